#version 330 core
// Temporal interpolation between the last two generated frames, plus mild unsharp masking,
// at the generator's resolution (cheap: 128x128 for BigGAN-deep-128).
//   u_prev, u_curr : the previous and the newest frame (RGBA8, row 0 = top of the image)
//   u_t            : blend weight of the newest frame, 0..1 (elapsed fraction of the generator interval)
//   u_sharpen      : unsharp-mask amount, 0..1 (fx.sharpen.amount)
uniform sampler2D u_prev;
uniform sampler2D u_curr;
uniform float u_t;
uniform float u_sharpen;

in vec2 v_uv;
out vec4 f_color;

vec3 frame_at(ivec2 p, ivec2 size) {
    p = clamp(p, ivec2(0), size - 1);
    return mix(texelFetch(u_prev, p, 0).rgb, texelFetch(u_curr, p, 0).rgb, u_t);
}

void main() {
    ivec2 size = textureSize(u_curr, 0);
    ivec2 p = ivec2(v_uv * vec2(size));
    vec3 c = frame_at(p, size);
    vec3 blur = (frame_at(p + ivec2(1, 0), size) + frame_at(p - ivec2(1, 0), size)
               + frame_at(p + ivec2(0, 1), size) + frame_at(p - ivec2(0, 1), size)) * 0.25;
    c = c + (c - blur) * (u_sharpen * 1.5);
    f_color = vec4(clamp(c, 0.0, 1.0), 1.0);
}
