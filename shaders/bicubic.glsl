// Bicubic Catmull-Rom sampling (16 texel taps), shared by upscale.frag and post.frag through the loader's
// #include. Catmull-Rom interpolates (passes through the texels) and reproduces linear ramps exactly; its small
// negative lobes keep edges crisp where bilinear blurs them.

// Weights of the 4 taps around a sample, given the fractional position f in [0,1).
vec4 catmull_rom(float f) {
    float f2 = f * f;
    float f3 = f2 * f;
    return vec4(
        -0.5 * f3 + f2 - 0.5 * f,
         1.5 * f3 - 2.5 * f2 + 1.0,
        -1.5 * f3 + 2.0 * f2 + 0.5 * f,
         0.5 * f3 - 0.5 * f2);
}

// tex sampled at texture coordinates uv (0..1, texel centres at (i + 0.5) / size), edges clamped.
vec3 bicubic(sampler2D tex, vec2 uv) {
    ivec2 size = textureSize(tex, 0);
    vec2 pos = uv * vec2(size) - 0.5;
    vec2 base = floor(pos);
    vec2 f = pos - base;
    vec4 wx = catmull_rom(f.x);
    vec4 wy = catmull_rom(f.y);
    vec3 acc = vec3(0.0);
    for (int j = 0; j < 4; ++j) {
        vec3 row = vec3(0.0);
        for (int i = 0; i < 4; ++i) {
            ivec2 p = clamp(ivec2(base) + ivec2(i - 1, j - 1), ivec2(0), size - 1);
            row += texelFetch(tex, p, 0).rgb * wx[i];
        }
        acc += row * wy[j];
    }
    return clamp(acc, 0.0, 1.0);
}
