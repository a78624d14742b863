"""Every parameter vj has, declared once: name, range, default, unit, what it drives, how a surface sends it.

This is the table the rest reads (nothing else states a range or a default):

* the live registry (:mod:`vj.control.params`, :data:`LIVE`), so OSC, MIDI, keys and presets;
* the mapping (:mod:`vj.mapping`): :data:`vj.mapping.RANGES`, the defaults of
  :class:`vj.mapping.MappingSettings` and :meth:`vj.mapping.Mapper.apply_params` (via :attr:`Param.mapping`);
* ``vj render``'s mapping flags (:mod:`vj.commands.render`: range, default and help from :func:`setting`);
* the parameter table of docs/osc.md (:func:`osc_table`; a test keeps the two equal).

Two contexts, one declaration. ``vj live`` starts from :attr:`Param.default`, tuned for a show. ``vj render``
starts from the deep music visualizer's own defaults where they differ (:attr:`Param.render_default`: truncation
1; no pulse lead, since offline frames are aligned with the audio). The beat-locked reactions (``gan.pulse``,
``gan.calm``, ``gan.onset_follow``, ``gan.class_beat``, ``gan.truncation_pulse``) are on in both; all at 0 give the original's motion.
Smoothing is one parameter with two
spellings: live sets ``gan.smooth_s`` in seconds (frame-rate independent); the mapping keeps the original's
``smooth_factor`` in video frames, and :attr:`Param.per_second` declares the conversion (frames = s × fps).
"""

from __future__ import annotations

from dataclasses import dataclass

_KINDS = ("float", "int", "bool", "trigger")


@dataclass(frozen=True)
class Param:
    """One parameter.

    Attributes:
        name: dotted live name (``"gan.truncation"``; OSC ``/vj/gan/truncation``), or the mapping field's name for
            a render-only setting.
        default: value at the start of ``vj live``.
        lo, hi: inclusive range; every value set is clamped to it.
        kind: ``"float"``, ``"int"`` (rounded), ``"bool"`` (0 or 1; "!" toggles) or ``"trigger"`` (acts on the
            rising edge; its value is a counter of edges).
        unit: unit for display and docs (``"s"``, ``"Hz"``, ``"bpm"``, ``"frames"``, ``""`` for 0..1 amounts).
        doc: one line for the overlay, docs/osc.md and ``--help``.
        mapping: the :class:`vj.mapping.MappingSettings` field this parameter sets, or None (display, control).
        per_second: the mapping field counts video frames: it is set to ``value × fps``.
        render_default: default of ``vj render`` (the original's) where it differs from ``default``; None = same.
        osc: how OSC/MIDI send it: ``"fader"`` (0..1 scaled to the range, ``+d``/``-d`` relative), ``"switch"``
            (0/1, ``!`` or no argument toggles), ``"edge"`` (acts on a rising edge), ``"raw"`` (the value itself).
        live: in the live registry (False: a render-only mapping setting).
    """

    name: str
    default: float
    lo: float = 0.0
    hi: float = 1.0
    kind: str = "float"
    unit: str = ""
    doc: str = ""
    mapping: str | None = None
    per_second: bool = False
    render_default: float | None = None
    osc: str = ""
    live: bool = True

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"{self.name}: unknown kind {self.kind!r}")
        if not self.osc:
            object.__setattr__(self, "osc", {"bool": "switch", "trigger": "edge"}.get(self.kind, "fader"))
        for f in ("default", "lo", "hi"):
            object.__setattr__(self, f, float(getattr(self, f)))

    @property
    def render_value(self) -> float:
        """The default ``vj render`` starts from."""
        return self.default if self.render_default is None else float(self.render_default)

    def clamp(self, value: float) -> float:
        """``value`` clamped to the range (rounded for int/trigger, 0/1 for bool)."""
        v = min(max(float(value), self.lo), self.hi)
        if self.kind in ("int", "trigger"):
            v = float(round(v))
        elif self.kind == "bool":
            v = 1.0 if v >= 0.5 else 0.0
        return v

    def from_unit(self, x: float) -> float:
        """Scale 0..1 (a fader) to the range."""
        return self.clamp(self.lo + min(max(float(x), 0.0), 1.0) * (self.hi - self.lo))

    def to_unit(self, value: float) -> float:
        """Scale a value in the range to 0..1 (for feedback to faders)."""
        return 0.0 if self.hi == self.lo else (value - self.lo) / (self.hi - self.lo)


def _p(name, default, lo=0.0, hi=1.0, kind="float", unit="", doc="", **kw) -> Param:
    return Param(name, default, lo, hi, kind, unit, doc, **kw)


#: Every live parameter, in the order of docs/osc.md.
LIVE: tuple[Param, ...] = (
    # output
    _p("master", 1.0, doc="master fader: output brightness"),
    _p("blackout", 0, 0, 1, "bool", doc="output black (the show goes on underneath)"),
    _p("freeze", 0, 0, 1, "bool", doc="hold the current image"),
    _p("strobe", 0, 0, 1, "bool", doc="strobe on/off (at most 3 flashes per second)"),
    _p("strobe.rate_hz", 2.0, 0.5, 3.0, unit="Hz", doc="strobe rate, capped at 3 Hz for photosensitivity"),
    _p("transition.time_s", 2.0, 0.0, 30.0, unit="s", doc="crossfade time when switching presets"),
    _p("transition.quantize", 0, 0, 2, "int", doc="start preset changes on: 0 = now, 1 = next beat, 2 = next bar"),
    # generator mapping (the deep music visualizer's controls, live-safe)
    _p("gan.truncation", 0.7, 0.05, 1.0, doc="BigGAN truncation: low = canonical, high = varied/wild",
       mapping="truncation", render_default=1.0),
    _p("gan.pitch_sensitivity", 220, 200, 295, doc="how fast the class vector follows the chroma",
       mapping="pitch_sensitivity"),
    _p("gan.tempo_sensitivity", 0.25, 0.0, 1.0, doc="how far the noise vector moves with loudness and its rise",
       mapping="tempo_sensitivity"),
    _p("gan.depth", 1.0, 0.0, 1.0, doc="maximum class-vector weight", mapping="depth"),
    _p("gan.jitter", 0.5, 0.0, 1.0, doc="random jitter of the noise motion (reduces repetition)", mapping="jitter"),
    _p("gan.smooth_s", 0.5, 0.0, 5.0, unit="s", doc="class-vector smoothing time constant",
       mapping="smooth_factor", per_second=True),
    _p("gan.speed", 1.0, 0.0, 4.0, doc="noise motion speed multiplier", mapping="speed"),
    _p("gan.beat_kick", 0.0, 0.0, 1.0, doc="extra noise jump when a beat is reported (late; gan.pulse lands on it)",
       mapping="beat_kick"),
    # beat-locked reactions (vj.motion; 0 = the original's motion; tuning in docs/live.md, "Reactions")
    _p("gan.pulse", 0.7, 0.0, 1.0, doc="noise jolt on each beat and strong kick, decaying within the beat",
       mapping="pulse"),
    _p("gan.calm", 0.7, 0.0, 1.0, doc="how much the steady loudness motion between beats is reduced",
       mapping="calm"),
    _p("gan.onset_follow", 0.5, 0.0, 1.0, doc="noise step with each frame's onset strength (every hit nudges)",
       mapping="onset_follow"),
    _p("gan.class_beat", 0.8, 0.0, 1.0, doc="class mix moves on the beats (and slower between them)",
       mapping="class_beat"),
    _p("gan.truncation_pulse", 0.3, 0.0, 1.0, doc="truncation swing on each beat", mapping="truncation_pulse"),
    _p("gan.pulse_lead_s", 0.08, 0.0, 0.3, unit="s", doc="how early the pulse starts (generator + display latency)",
       mapping="pulse_lead_s", render_default=0.0),
    _p("gan.pulse_lead_auto", 1, 0, 1, "bool", doc="live: gan.pulse_lead_s follows the measured sound-to-picture latency",
       render_default=0),
    # effects
    _p("fx.flash.amount", 0.3, doc="white flash on onsets"),
    _p("fx.zoom.amount", 0.3, doc="zoom punch on beats"),
    _p("fx.hue.amount", 0.0, doc="hue rotation speed"),
    _p("fx.hue.shift", 0.0, doc="static hue offset (0..1 = full circle)"),
    _p("fx.feedback.amount", 0.0, 0.0, 0.98, doc="feedback trails (previous output fading into the new)"),
    _p("fx.kaleido.amount", 0.0, doc="kaleidoscope mix"),
    _p("fx.kaleido.segments", 6, 2, 16, "int", doc="kaleidoscope mirror segments"),
    _p("fx.rgbshift.amount", 0.0, doc="RGB channel shift, pumped by loudness"),
    _p("fx.contrast.amount", 0.5, doc="contrast (0.5 = unchanged)"),
    _p("fx.brightness.amount", 0.5, doc="brightness (0.5 = unchanged)"),
    _p("fx.levels.amount", 0.0, doc="auto-levels look of the original visualizer"),
    _p("fx.sharpen.amount", 0.35, doc="sharpening after the upscale"),
    # tempo
    _p("tempo.bpm", 120.0, 20.0, 300.0, unit="bpm", doc="tempo clock's tempo (set, tapped, or followed)", osc="raw"),
    _p("tempo.follow", 1, 0, 1, "bool", doc="tempo clock follows the analysis beat tracker (off: free-running)"),
)

#: Mapping settings that only ``vj render`` sets (named by their MappingSettings field).
RENDER_ONLY: tuple[Param, ...] = (
    _p("smooth_factor", 20, 1, 200, unit="frames", doc="class smoothing [video frames]", mapping="smooth_factor",
       live=False),
    _p("num_classes", 12, 1, 12, "int", doc="how many classes (pitches) are used", mapping="num_classes",
       live=False),
    _p("fps", 30, 1, 240, unit="frames/s", doc="video frame rate", mapping="fps", live=False),
)


def setting(field: str) -> Param:
    """The declaration behind a :class:`vj.mapping.MappingSettings` field, in the field's own unit.

    For ``smooth_factor`` that is the render-only frame count (live's ``gan.smooth_s`` converts to it).

    Raises:
        KeyError: no parameter sets that field.
    """
    for p in RENDER_ONLY + LIVE:
        if p.mapping == field:
            return p
    raise KeyError(field)


def mapping_ranges() -> dict[str, tuple[float, float]]:
    """``{MappingSettings field: (lo, hi)}`` for every numeric field, in the field's unit."""
    out = {}
    for f in dict.fromkeys(p.mapping for p in LIVE + RENDER_ONLY if p.mapping):
        p = setting(f)
        out[f] = (int(p.lo), int(p.hi)) if p.kind == "int" else (p.lo, p.hi)
    return out


_OSC_ARGUMENT = {"fader": "0..1 fader, `+d`/`-d`", "switch": "0/1, `!`, none = toggle", "edge": "edge"}


def _g(x: float) -> str:
    return f"{x:g}"


def osc_table() -> str:
    """The parameter table of docs/osc.md (Markdown), one row per live parameter."""
    rows = ["| Address | Argument | Range | Default | What |", "|---|---|---|---|---|"]
    for p in LIVE:
        arg = _OSC_ARGUMENT.get(p.osc) or f"{p.unit or 'value'} (raw, {_g(p.lo)}–{_g(p.hi)})"
        rng = f"{_g(p.lo)}–{_g(p.hi)}" + (f" {p.unit}" if p.unit else "") + (" (int)" if p.kind == "int" else "")
        rows.append(f"| `/vj/{p.name.replace('.', '/')}` | {arg} | {rng} | {_g(p.default)} | {p.doc} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # python -m vj.parameters > table.md
    print(osc_table(), end="")
