"""The operator overlay (H or Tab): rates, tempo, input level, classes, latency, input state, keyboard help.

Drawn with a pyglet :class:`pyglet.graphics.Batch` *after* the moderngl frame, straight into the window (it is never
part of the output that is recorded or projected through ``--record``). pyglet changes GL state (program, blending,
vertex array, texture unit); the pipeline sets everything it needs at the start of every frame, so nothing leaks
back. The text is re-laid out at most a few times a second (layout is the expensive part).
"""

from __future__ import annotations

import math

#: (keys, what they do): the window's own keys, shown in the overlay and in docs/live.md
WINDOW_KEYS: tuple[tuple[str, str], ...] = (
    ("F", "fullscreen on/off"),
    ("H / Tab", "overlay on/off"),
    ("Esc Esc", "quit (windowed: one Esc; fullscreen: twice within 1 s, or hold 1 s)"),
)

def key_help() -> tuple[tuple[str, str], ...]:
    """All keyboard shortcuts: the window's, then :data:`vj.control.keyboard.BINDINGS`."""
    from vj.control.keyboard import BINDINGS

    return WINDOW_KEYS + tuple((k, d) for k, _, d in BINDINGS)


#: source states that mean "no audio is arriving"
LOST_STATES = ("stalled", "error", "retrying")


def level_bar(db: float, width: int = 20) -> str:
    """A text meter for an input level in dBFS (-60..0 dB → empty..full)."""
    x = 0.0 if not math.isfinite(db) else min(max((db + 60.0) / 60.0, 0.0), 1.0)
    n = int(round(x * width))
    return "#" * n + "-" * (width - n)


def source_line(state: str, error: str | None) -> str:
    """The overlay's input line for a source state (``SourceState.value``) and its last error."""
    if state in LOST_STATES:
        msg = "INPUT LOST — retrying" if state != "stalled" else "INPUT STALLED — waiting for audio"
        return f"{msg}" + (f" ({error})" if error else "")
    if state == "ended":
        return "input ended (visuals drift on the last state)"
    return state or "starting"


def bar_line(f) -> str:
    """The overlay's bar / phrase / section line for a :class:`vj.audio.features.Features` (or None).

    E.g. ``bar 3.2/4 (4/4)  phrase 8: 5.3  16: 13.3  32: 13.3   section full   last drop 4.1 s ago (0.92)``.
    """
    if f is None or getattr(f, "beat_in_bar", -1) < 0:
        return "bar -   phrase -   section -"
    m = int(getattr(f, "meter", 4))
    pos = float(f.phrase_pos)
    line = (f"bar {f.bar_phase * m + 1:.1f}/{m} ({m}/4)  phrase 8: {pos % 8 + 1:.1f}  16: {pos % 16 + 1:.1f}  "
            f"32: {pos + 1:.1f}   section {f.section or '-'}")
    if f.last_event:
        line += (f"   last {f.last_event.upper()} {max(f.time_s - f.last_event_time_s, 0.0):.1f} s ago "
                 f"({f.last_event_confidence:.2f})")
    return line


def overlay_text(info: dict, width_chars: int = 120) -> str:
    """The overlay's text from a dict of figures (keys as produced by the live loop; missing ones shown as '-').

    Keys: ``display_fps``, ``gan_fps``, ``model``, ``bpm``, ``latency_ms_p50``, ``latency_ms_p95``,
    ``dropped_frames``, ``loudness_db``, ``input``, ``source_state``, ``source_error``, ``classes`` (names),
    ``master``, ``blackout``, ``freeze``, ``strobe``, ``recording``, ``message``, ``features`` (the latest
    :class:`vj.audio.features.Features`, for the bar/phrase/event line: :func:`bar_line`). ``width_chars`` wraps the key
    help to that many characters per line.
    """

    def num(key, fmt="{:.1f}"):
        v = info.get(key)
        return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else fmt.format(v)

    onoff = lambda key: "ON" if info.get(key) else "off"  # noqa: E731

    def locking(f) -> str:  # the beat clock withholds beats until its tempo has settled (vj.audio.beat)
        from vj.audio.analysis_config import AnalysisConfig

        low = f is not None and f.bpm > 0 and f.tempo_confidence < AnalysisConfig.beat_min_confidence
        return f" (locking: confidence {f.tempo_confidence:.2f})" if low else ""
    lines = [
        f"display {num('display_fps')} fps   generator {num('gan_fps')} fps ({info.get('model', '?')})",
        f"bpm {num('bpm')}{locking(info.get('features'))}   latency p50 {num('latency_ms_p50', '{:.0f}')} ms  p95 "
        f"{num('latency_ms_p95', '{:.0f}')} ms   dropped {info.get('dropped_frames', 0)}",
        f"input [{level_bar(info.get('loudness_db', -120.0))}] {num('loudness_db', '{:.0f}')} dB   "
        f"{info.get('input', '')}: {source_line(info.get('source_state', ''), info.get('source_error'))}",
        bar_line(info.get("features")),
        "classes: " + (", ".join(info.get("classes", ())) or "-"),
        f"master {num('master', '{:.2f}')}  blackout {onoff('blackout')}  freeze {onoff('freeze')}  "
        f"strobe {onoff('strobe')}" + ("   ● REC" if info.get("recording") else ""),
    ]
    line = "keys:"
    for k, v in key_help():
        item = f"{k} {v.split(' (')[0].split(':')[0]}"
        if len(line) + 3 + len(item) > width_chars and line.strip():
            lines.append(line)
            line = "     "
        line += ("  " if line.endswith(":") or not line.strip() else " · ") + item
    lines.append(line)
    if info.get("message"):
        lines.append(info["message"])
    return "\n".join(lines)


class Overlay:
    """The overlay's pyglet objects (one Batch: a translucent panel and a multi-line label).

    Args:
        window: the pyglet window (its GL context current).
        font_size: text size [pt].
    """

    def __init__(self, window, font_size: int = 12):
        import pyglet

        self.window = window
        self.font_size = font_size
        self.visible = False
        self.batch = pyglet.graphics.Batch()
        self._bg_group = pyglet.graphics.Group(order=0)
        self._fg_group = pyglet.graphics.Group(order=1)
        self.panel = pyglet.shapes.Rectangle(0, 0, 10, 10, color=(0, 0, 0, 170), batch=self.batch,
                                             group=self._bg_group)
        self.label = pyglet.text.Label(
            "", font_name=("DejaVu Sans Mono", "Liberation Mono", "monospace"), font_size=font_size,
            x=12, y=12, width=max(window.width - 24, 100), multiline=True, anchor_y="bottom",
            color=(235, 235, 235, 255), batch=self.batch, group=self._fg_group,
        )
        self._text = ""

    def update(self, info: dict) -> None:
        """Re-lay out the text if it changed (call a few times a second)."""
        width = max(self.window.width - 24, 100)
        char_px = self.font_size * 96 / 72 * 0.61  # DejaVu Sans Mono advance ≈ 0.6 em
        text = overlay_text(info, width_chars=max(int(width / char_px), 40))
        if text != self._text or self.label.width != width:
            self._text = text
            self.label.width = width
            self.label.text = text
            self.panel.width = self.window.width
            self.panel.height = self.label.content_height + 24

    def draw(self) -> None:
        """Draw into the window's default framebuffer (after the moderngl frame, before the flip)."""
        if self.visible:
            self.batch.draw()

    def delete(self) -> None:
        self.label.delete()
        self.panel.delete()
