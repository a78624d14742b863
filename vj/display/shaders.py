"""The one place GLSL files are read: :class:`ShaderLoader` (shaders live as files in ``shaders/``)."""

from __future__ import annotations

from pathlib import Path

from vj.resources import shader_dir


class ShaderError(RuntimeError):
    """A shader file is missing or does not compile/link (names the files and GL's log)."""


class ShaderLoader:
    """Reads ``*.vert`` / ``*.frag`` files and builds moderngl programs, caching by file pair.

    Args:
        ctx: the moderngl context (main thread).
        directory: where the GLSL files are; default :func:`vj.resources.shader_dir`.
    """

    def __init__(self, ctx, directory: str | Path | None = None):
        self.ctx = ctx
        self.directory = Path(directory) if directory is not None else shader_dir()
        self._programs: dict[tuple[str, str], object] = {}

    def source(self, name: str) -> str:
        """Text of the shader file ``name`` (e.g. ``"post.frag"``). Raises ShaderError if missing."""
        path = self.directory / name
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ShaderError(f"cannot read shader {path}: {exc.strerror or exc}") from None

    def program(self, vertex: str, fragment: str):
        """The linked program for the two files (built once, then cached).

        Args:
            vertex: vertex shader file name (``"quad.vert"``).
            fragment: fragment shader file name.

        Returns:
            moderngl.Program

        Raises:
            ShaderError: missing file, compile or link error (with GL's log).
        """
        key = (vertex, fragment)
        if key not in self._programs:
            try:
                self._programs[key] = self.ctx.program(
                    vertex_shader=self.source(vertex), fragment_shader=self.source(fragment)
                )
            except ShaderError:
                raise
            except Exception as exc:  # moderngl.Error: compile/link log
                raise ShaderError(f"{vertex} + {fragment}: {exc}") from None
        return self._programs[key]

    def release(self) -> None:
        """Release every program built."""
        for p in self._programs.values():
            p.release()
        self._programs.clear()
