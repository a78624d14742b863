"""The one place GLSL files are read: :class:`ShaderLoader` (shaders live as files in ``shaders/``).

Two small preprocessing steps happen here, before GL sees the text: ``#include "file.glsl"`` lines are replaced by
that file (shared functions such as the bicubic filter), and variants get ``#define`` lines after ``#version``.
"""

from __future__ import annotations

from pathlib import Path

from vj.errors import VJError
from vj.resources import shader_dir


class ShaderError(VJError):
    """A shader file is missing or does not compile/link (names the files and GL's log); reported in one line."""


class ShaderLoader:
    """Reads ``*.vert`` / ``*.frag`` files and builds moderngl programs, caching by file pair.

    Args:
        ctx: the moderngl context (main thread).
        directory: where the GLSL files are; default :func:`vj.resources.shader_dir`.
    """

    def __init__(self, ctx, directory: str | Path | None = None):
        self.ctx = ctx
        self.directory = Path(directory) if directory is not None else shader_dir()
        self._programs: dict[tuple, object] = {}

    def source(self, name: str) -> str:
        """Text of the shader file ``name`` (e.g. ``"post.frag"``). Raises ShaderError if missing."""
        path = self.directory / name
        try:
            return path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ShaderError(f"cannot read shader {path}: {exc.strerror or exc}") from None

    def expanded(self, name: str, _depth: int = 0) -> str:
        """Text of ``name`` with each ``#include "other.glsl"`` line replaced by that file's (expanded) text.

        Raises:
            ShaderError: a missing file, or includes nested deeper than 8 (a cycle).
        """
        if _depth > 8:
            raise ShaderError(f"{name}: #include nested too deep (a cycle?)")
        out = []
        for line in self.source(name).splitlines():
            stripped = line.strip()
            if stripped.startswith("#include"):
                target = stripped[len("#include"):].strip().strip('"<>')
                out.append(self.expanded(target, _depth + 1))
            else:
                out.append(line)
        return "\n".join(out) + "\n"

    def source_with_defines(self, name: str, defines=()) -> str:
        """Text of ``name`` (includes expanded) with ``#define D`` lines for each of ``defines`` after ``#version``."""
        text = self.expanded(name)
        if not defines:
            return text
        head, sep, rest = text.partition("\n")
        if not head.startswith("#version"):
            head, sep, rest = "", "", text
        lines = "".join(f"#define {d}\n" for d in sorted(defines))
        return f"{head}{sep}{lines}{rest}"

    def program(self, vertex: str, fragment: str, defines=()):
        """The linked program for the two files (built once per set of defines, then cached).

        Args:
            vertex: vertex shader file name (``"quad.vert"``).
            fragment: fragment shader file name.
            defines: preprocessor names to define in the fragment shader (a variant, e.g. ``{"FX_HUE"}``).

        Returns:
            moderngl.Program

        Raises:
            ShaderError: missing file, compile or link error (with GL's log).
        """
        key = (vertex, fragment, frozenset(defines))
        if key not in self._programs:
            try:
                self._programs[key] = self.ctx.program(
                    vertex_shader=self.expanded(vertex), fragment_shader=self.source_with_defines(fragment, defines)
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
