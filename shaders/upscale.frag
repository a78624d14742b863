#version 330 core
// Quality upscale of the (small) blended frame to the output size: bicubic Catmull-Rom, cropped to cover the
// output's aspect ratio, and flipped so image row 0 is at the top. Used when the post effects need the upscaled
// image as a texture (RGB shift, kaleidoscope); otherwise post.frag samples the small frame directly (FX_DIRECT).
//   u_src  : blended frame at the generator's resolution
//   u_crop : fraction of the source visible in x and y (1 = all), centred
uniform sampler2D u_src;
uniform vec2 u_crop;

in vec2 v_uv;
out vec4 f_color;

#include "bicubic.glsl"

void main() {
    vec2 uv = 0.5 + (v_uv - 0.5) * u_crop;
    uv.y = 1.0 - uv.y;                        // texture row 0 holds the top of the image
    f_color = vec4(bicubic(u_src, uv), 1.0);
}
