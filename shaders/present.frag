#version 330 core
// Shows the final output in the window's viewport (letterbox or fill is done by the viewport and u_crop).
uniform sampler2D u_output;
uniform vec2 u_crop;   // fraction of the output visible in x and y (1 = all; < 1 when filling and cropping)

in vec2 v_uv;
out vec4 f_color;

void main() {
    f_color = vec4(texture(u_output, 0.5 + (v_uv - 0.5) * u_crop).rgb, 1.0);
}
