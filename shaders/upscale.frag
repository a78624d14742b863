#version 330 core
// Quality upscale of the (small) blended frame to the output size: bicubic Catmull-Rom (16 texel taps),
// cropped to cover the output's aspect ratio, and flipped so image row 0 is at the top.
//   u_src  : blended frame at the generator's resolution
//   u_crop : fraction of the source visible in x and y (1 = all), centred
uniform sampler2D u_src;
uniform vec2 u_crop;

in vec2 v_uv;
out vec4 f_color;

// Catmull-Rom weights for the 4 taps around a sample, given the fractional position f in [0,1).
vec4 catmull_rom(float f) {
    float f2 = f * f;
    float f3 = f2 * f;
    return vec4(
        -0.5 * f3 + f2 - 0.5 * f,
         1.5 * f3 - 2.5 * f2 + 1.0,
        -1.5 * f3 + 2.0 * f2 + 0.5 * f,
         0.5 * f3 - 0.5 * f2);
}

void main() {
    vec2 uv = 0.5 + (v_uv - 0.5) * u_crop;
    uv.y = 1.0 - uv.y;                        // texture row 0 holds the top of the image
    ivec2 size = textureSize(u_src, 0);
    vec2 pos = uv * vec2(size) - 0.5;          // texel-centre coordinates
    vec2 base = floor(pos);
    vec2 f = pos - base;
    vec4 wx = catmull_rom(f.x);
    vec4 wy = catmull_rom(f.y);
    vec3 acc = vec3(0.0);
    for (int j = 0; j < 4; ++j) {
        vec3 row = vec3(0.0);
        for (int i = 0; i < 4; ++i) {
            ivec2 p = clamp(ivec2(base) + ivec2(i - 1, j - 1), ivec2(0), size - 1);
            row += texelFetch(u_src, p, 0).rgb * wx[i];
        }
        acc += row * wy[j];
    }
    f_color = vec4(clamp(acc, 0.0, 1.0), 1.0);
}
