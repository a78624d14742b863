#version 330 core
// Audio-reactive post effects at the output resolution.
// Built in variants: the loader prepends "#define FX_<NAME>" for each effect in use (FX_KALEIDO, FX_RGBSHIFT,
// FX_LEVELS, FX_HUE, FX_FEEDBACK), so an idle effect costs nothing (software GL runs both sides of a branch).
// FX_DIRECT (set when neither RGB shift nor kaleidoscope is on): sample the small blended frame with bicubic
// filtering here instead of reading the upscale pass's output, saving a full-screen pass.
// With FX_FEEDBACK there are two outputs:
//   location 0 -> the feedback buffer (the look before flash/strobe/master/blackout, read back next frame)
//   location 1 -> the final output (what the projector shows and --record writes)
// without it only the final output, at location 0.
uniform sampler2D u_image;      // upscaled frame (row 0 of the texture = bottom of the picture)
uniform sampler2D u_previous;   // last frame's feedback buffer
uniform vec2 u_resolution;      // output size [px]
uniform float u_zoom;           // >= 1, beat zoom punch
uniform float u_kaleido;        // kaleidoscope mix 0..1
uniform float u_segments;       // kaleidoscope mirror segments
uniform float u_rgbshift;       // channel offset, fraction of the width
uniform float u_hue;            // hue rotation [rad]
uniform float u_contrast;       // contrast factor (1 = unchanged)
uniform float u_brightness;     // brightness offset (0 = unchanged)
uniform float u_levels;         // auto-levels mix 0..1
uniform vec3 u_level_lo;        // black point per channel
uniform vec3 u_level_hi;        // white point per channel
uniform float u_feedback;       // feedback trails 0..0.98
uniform float u_flash;          // white flash 0..1
uniform float u_strobe;         // 1 while a strobe flash is lit
uniform float u_master;         // master fader 0..1
uniform float u_blackout;       // 1 = black

in vec2 v_uv;
#ifdef FX_FEEDBACK
layout(location = 0) out vec4 f_look;
layout(location = 1) out vec4 f_final;
#else
layout(location = 0) out vec4 f_final;
#endif

const float PI = 3.14159265358979;

vec2 kaleido(vec2 uv) {
    float aspect = u_resolution.x / u_resolution.y;
    vec2 d = (uv - 0.5) * vec2(aspect, 1.0);
    float r = length(d);
    float seg = 2.0 * PI / max(u_segments, 1.0);
    float a = mod(atan(d.y, d.x), seg);
    a = min(a, seg - a);
    return 0.5 + vec2(cos(a), sin(a)) * r / vec2(aspect, 1.0);
}

#ifdef FX_DIRECT
uniform sampler2D u_src;        // the blended frame at the generator's size (row 0 = top of the picture)
uniform vec2 u_crop;            // fraction of it visible in x and y (cover the output's aspect ratio)
#include "bicubic.glsl"

vec3 fetch(vec2 uv) {
    vec2 s = 0.5 + (uv - 0.5) * u_crop;
    s.y = 1.0 - s.y;
    return bicubic(u_src, s);
}
#else
vec3 fetch(vec2 uv) {
    return texture(u_image, uv).rgb;
}
#endif

vec3 sample_image(vec2 uv) {
#ifdef FX_RGBSHIFT
    vec2 off = vec2(u_rgbshift, 0.0);
    return vec3(fetch(uv + off).r, fetch(uv).g, fetch(uv - off).b);
#else
    return fetch(uv);
#endif
}

vec3 rotate_hue(vec3 c, float angle) {
    // rotation about the grey axis (1,1,1)/sqrt(3) (Rodrigues' formula)
    const vec3 k = vec3(0.57735027);
    float cs = cos(angle);
    return c * cs + cross(k, c) * sin(angle) + k * dot(k, c) * (1.0 - cs);
}

void main() {
    vec2 uv = 0.5 + (v_uv - 0.5) / u_zoom;
    vec3 c = sample_image(uv);
#ifdef FX_KALEIDO
    c = mix(c, sample_image(0.5 + (kaleido(v_uv) - 0.5) / u_zoom), u_kaleido);
#endif
#ifdef FX_LEVELS
    c = mix(c, (c - u_level_lo) / max(u_level_hi - u_level_lo, vec3(0.05)), u_levels);
#endif
#ifdef FX_HUE
    c = rotate_hue(c, u_hue);
#endif
    c = (c - 0.5) * u_contrast + 0.5 + u_brightness;
    c = clamp(c, 0.0, 1.0);
#ifdef FX_FEEDBACK
    // trails: the previous look, drawn slightly enlarged so trails stream outwards
    vec3 prev = texture(u_previous, 0.5 + (v_uv - 0.5) * 0.985).rgb;
    c = max(c, prev * u_feedback);   // trails fade by u_feedback per frame
    f_look = vec4(c, 1.0);
#endif

    vec3 o = mix(c, vec3(1.0), clamp(u_flash, 0.0, 1.0));
    o = mix(o, vec3(1.0), u_strobe);
    o *= clamp(u_master, 0.0, 1.0) * (1.0 - u_blackout);
    f_final = vec4(o, 1.0);
}
