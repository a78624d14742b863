#version 330 core
// The NDI output frame, drawn from the final output texture and read back as NDI's own pixel layout, top row
// first (NDI's order; GL's framebuffer starts at the bottom, so v is flipped here and no copy flips it later).
//
// NDI_UYVY: the render target is (width/2) x height RGBA8; each texel packs two output pixels as
//           (U, Y0, V, Y1) = NDI's UYVY 4:2:2 byte order. BT.709 with studio range (Y 16..235, C 16..240),
//           the matrix NDI uses for HD; U and V are the mean of the pair (ITU-R BT.709-6, item 3).
// otherwise: RGBA8 at the output size. With NDI_KEY the alpha is a luma-style key for mixers:
//           a = max(r, g, b), colour un-premultiplied (c / a), so black is transparent, blackout makes the layer
//           vanish, and compositing "over" black gives back the picture exactly. Without it alpha is 1.
uniform sampler2D u_src;   // the pipeline's final output (linear filtering)
uniform vec2 u_size;       // NDI frame size [px] (width, height)

in vec2 v_uv;
out vec4 f_out;

vec3 px(float x, float y) {  // output pixel (x, y) [px], y = 0 at the top
    return clamp(texture(u_src, vec2((x + 0.5) / u_size.x, 1.0 - (y + 0.5) / u_size.y)).rgb, 0.0, 1.0);
}

void main() {
    float y = floor(gl_FragCoord.y);   // row 0 of the target is read back first = the top row
    float x = floor(gl_FragCoord.x);
#ifdef NDI_UYVY
    vec3 a = px(2.0 * x, y);
    vec3 b = px(2.0 * x + 1.0, y);
    const vec3 K = vec3(0.2126, 0.7152, 0.0722);
    float ya = dot(K, a);
    float yb = dot(K, b);
    vec3 m = 0.5 * (a + b);
    float ym = dot(K, m);
    float cb = (m.b - ym) / 1.8556;
    float cr = (m.r - ym) / 1.5748;
    f_out = vec4(128.0 + 224.0 * cb, 16.0 + 219.0 * ya, 128.0 + 224.0 * cr, 16.0 + 219.0 * yb) / 255.0;
#else
    vec3 c = px(x, y);
#ifdef NDI_KEY
    float k = max(max(c.r, c.g), c.b);
    f_out = vec4(k > 0.0 ? c / k : vec3(0.0), k);
#else
    f_out = vec4(c, 1.0);
#endif
#endif
}
