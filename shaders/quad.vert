#version 330 core
// Full-screen triangle from gl_VertexID (no vertex buffer): draw 3 vertices.
// v_uv runs 0..1 across the viewport, (0,0) = bottom left.
out vec2 v_uv;

void main() {
    vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));  // (0,0) (2,0) (0,2)
    v_uv = p;
    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
