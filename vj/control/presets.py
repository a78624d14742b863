"""Presets: a look saved as TOML — a class palette plus any subset of the live parameters.

A preset file (``presets/*.toml`` shipped with vj, or ``~/.config/vj/presets/*.toml`` of the user)::

    description = "Jellyfish, anemones and coral drifting in the dark"
    classes = ["jellyfish", "sea anemone", 109]      # names or ImageNet indices, 1..12 of them

    [params]
    gan.truncation = 0.55                           # dotted keys, or nested tables: [params.fx.zoom] amount = 0.2
    "fx.feedback.amount" = 0.4

A preset may also name *reactions* to the analysis's section events (:mod:`vj.audio.sections`)::

    on_drop = "next_preset"                          # or "prev_preset", or the name of a preset
    on_breakdown = { "fx.feedback.amount" = 0.8, "fx.zoom.amount" = 0 }   # parameters set when it happens
    on_build = { fx.hue.amount = 0.6 }

A reaction table takes the same parameters as ``[params]`` except the output switches (``master``, ``blackout``,
``freeze``): blackout and the master fader stay the performer's, above every reaction, and ``strobe`` keeps its
3-flashes-per-second limit. A preset change by reaction starts at once (the event is already on the bar's "one").

Only ``description``, ``classes``, ``params`` and ``on_build``/``on_drop``/``on_breakdown`` may appear at the top
level; every value must be a finite number
within the parameter's range (``true``/``false`` for on/off parameters). ``tempo.*`` and ``transition.*`` belong to
the performer, not to a look, and are refused, as are trigger parameters. The preset's name is its file name
without ``.toml``. See docs/presets.md.

:func:`load_preset` validates a file and raises :class:`vj.errors.VJError` naming the file, the field and the
problem; :func:`save_preset` writes one atomically and never overwrites an existing preset; :class:`PresetBank`
lists the shipped and user presets and steps through them. Switching with a crossfade is
:mod:`vj.control.crossfade`.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from vj.control.params import DEFAULT_PARAMS, Param
from vj.errors import VJError

MAX_CLASSES = 12
"""Most classes in a palette (the mapping ties each class to one of the 12 pitch classes)."""
MAX_FILE_BYTES = 256 * 1024
"""Larger preset files are refused without parsing."""
NOT_A_LOOK = ("tempo.", "transition.")
"""Parameter name prefixes a preset may not set (the performer's, not the look's)."""
NOT_SAVED = frozenset({"master", "blackout", "freeze", "strobe"})
"""Output switches that :func:`save_preset` leaves out of a saved look (a preset file may still set them)."""
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
REACTION_KEYS = ("on_build", "on_drop", "on_breakdown")
"""Top-level preset keys naming a reaction to a section event (``on_<event>``)."""
REACTION_STEPS = ("next_preset", "prev_preset")
"""Reaction strings that step through the bank (any other string names a preset)."""
NOT_IN_REACTIONS = frozenset({"master", "blackout", "freeze"})
"""Parameters a reaction may not set: the performer's output switches stay above everything."""
_TOP_LEVEL = ("description", "classes", "params", *REACTION_KEYS)


@dataclass(frozen=True)
class Preset:
    """A validated look.

    Attributes:
        name: file name without ``.toml``.
        classes: ImageNet indices (empty: the preset keeps the current palette).
        params: ``{parameter name: value}`` within range.
        description: one line for docs and the overlay.
        path: where it was read from (None if built in memory).
        reactions: ``{event: action}`` with event ``build``/``drop``/``breakdown`` and action a string
            (``"next_preset"``, ``"prev_preset"`` or a preset name) or a ``{parameter: value}`` mapping.
    """

    name: str
    classes: tuple[int, ...] = ()
    params: Mapping[str, float] = field(default_factory=dict)
    description: str = ""
    path: Path | None = None
    reactions: Mapping[str, object] = field(default_factory=dict)


def user_preset_dir() -> Path:
    """The user's preset folder: ``$XDG_CONFIG_HOME/vj/presets`` (default ``~/.config/vj/presets``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "vj" / "presets"


def shipped_preset_dir() -> Path:
    """The folder of presets shipped with vj (``presets/`` in a checkout, ``vj/_presets`` in a wheel)."""
    from vj.resources import preset_dir

    return preset_dir()


def _flatten(table: Mapping, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _check_value(p: Param, value, where: str) -> float:
    if isinstance(value, bool):
        if p.kind != "bool":
            raise VJError(f"{where}: true/false is only for on/off parameters; give a number in {p.lo:g}..{p.hi:g}")
        return 1.0 if value else 0.0
    if not isinstance(value, (int, float)):
        raise VJError(f"{where}: expected a number, got {type(value).__name__} {value!r}"[:300])
    v = float(value)
    if not math.isfinite(v):
        raise VJError(f"{where}: {value!r} is not a finite number")
    if not p.lo <= v <= p.hi:
        raise VJError(f"{where}: {value!r} is out of range {p.lo:g}..{p.hi:g}")
    return p.clamp(v)


def parse_preset(data: Mapping, name: str, source: str, params: Iterable[Param] = DEFAULT_PARAMS) -> Preset:
    """Validate a decoded preset table.

    Args:
        data: the TOML document as a dict.
        name: the preset's name.
        source: the file (or other origin) named in error messages.
        params: the known parameters.

    Returns:
        the :class:`Preset`.

    Raises:
        VJError: ``"<source>: <field>: <problem>"`` for an unknown top-level key or parameter, a value that is not
            a finite number in range, a trigger or performer parameter, a bad or unknown class.
    """
    from vj.models.imagenet import resolve_classes

    known = {p.name: p for p in params}
    for key in data:
        if key not in _TOP_LEVEL:
            raise VJError(f"{source}: {key}: unknown field (allowed: {', '.join(_TOP_LEVEL)})")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise VJError(f"{source}: description: expected a string")
    classes: tuple[int, ...] = ()
    if "classes" in data:
        items = data["classes"]
        if not isinstance(items, list) or not items or len(items) > MAX_CLASSES:
            raise VJError(f"{source}: classes: expected a list of 1 to {MAX_CLASSES} class names or indices")
        for item in items:
            if isinstance(item, bool) or not isinstance(item, (int, str)):
                raise VJError(f"{source}: classes: {item!r} is neither a class name nor an index")
        try:
            classes = tuple(resolve_classes(items))
        except VJError as exc:
            raise VJError(f"{source}: classes: {exc}") from None
    table = data.get("params", {})
    if not isinstance(table, dict):
        raise VJError(f"{source}: params: expected a table of parameter = value")
    values: dict[str, float] = {}
    for pname, value in _flatten(table).items():
        where = f"{source}: params.{pname}"
        p = known.get(pname)
        if p is None:
            near = difflib.get_close_matches(pname, list(known), n=3)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise VJError(f"{where}: unknown parameter{hint}")
        if pname.startswith(NOT_A_LOOK):
            raise VJError(f"{where}: tempo and transition settings belong to the performer, not to a preset")
        if p.kind == "trigger":
            raise VJError(f"{where}: a trigger cannot be stored in a preset")
        values[pname] = _check_value(p, value, where)
    reactions: dict[str, object] = {}
    for key in REACTION_KEYS:
        if key in data:
            reactions[key[3:]] = _parse_reaction(data[key], f"{source}: {key}", known)
    return Preset(name=name, classes=classes, params=values, description=description, reactions=reactions)


def _parse_reaction(value, where: str, known: Mapping[str, Param]):
    if isinstance(value, str):
        if value in REACTION_STEPS:
            return value
        try:
            return check_name(value)
        except VJError:
            raise VJError(f"{where}: expected {' or '.join(map(repr, REACTION_STEPS))}, a preset name, or a table "
                          f"of parameters; got {value!r}"[:300]) from None
    if not isinstance(value, dict) or not value:
        raise VJError(f"{where}: expected {' or '.join(map(repr, REACTION_STEPS))}, a preset name, or a table of "
                      "parameters")
    out: dict[str, float] = {}
    for pname, v in _flatten(value).items():
        w = f"{where}.{pname}"
        p = known.get(pname)
        if p is None:
            near = difflib.get_close_matches(pname, list(known), n=3)
            raise VJError(f"{w}: unknown parameter" + (f" (did you mean {', '.join(near)}?)" if near else ""))
        if pname in NOT_IN_REACTIONS or pname.startswith(NOT_A_LOOK):
            raise VJError(f"{w}: master, blackout, freeze, tempo and transition stay the performer's")
        out[pname] = 1.0 if p.kind == "trigger" else _check_value(p, v, w)
    return out


def load_preset(name_or_path: str | os.PathLike, dirs: Iterable[Path] | None = None,
                params: Iterable[Param] = DEFAULT_PARAMS) -> Preset:
    """Read and validate a preset by name or path.

    Args:
        name_or_path: a path to a ``.toml`` file, or a preset name looked up in ``dirs``.
        dirs: folders searched for a name, later ones winning (default: shipped, then the user's).
        params: the known parameters.

    Returns:
        the :class:`Preset` (with ``path`` set).

    Raises:
        VJError: no such preset; unreadable file; bad TOML (with line); any field problem (see :func:`parse_preset`).
    """
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if not (text.endswith(".toml") or os.sep in text or path.is_file()):
        found = PresetBank(dirs).path(text)
        if found is None:
            raise VJError(f"no preset named {text!r} (see `{_list_hint(dirs)}`)")
        path = found
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise VJError(f"{path}: file too large for a preset (over {MAX_FILE_BYTES // 1024} KiB)")
        raw = path.read_bytes()
    except OSError as exc:
        raise VJError(f"{path}: cannot read preset ({exc.strerror or exc})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise VJError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise VJError(f"{path}: bad TOML: {exc}") from None
    preset = parse_preset(data, path.stem, str(path), params)
    return Preset(preset.name, preset.classes, preset.params, preset.description, path, preset.reactions)


def _list_hint(dirs) -> str:
    return "ls " + " ".join(str(d) for d in (dirs or [shipped_preset_dir(), user_preset_dir()]))


def check_name(name: str) -> str:
    """Validate a preset name for saving: letters, digits, ``-``, ``_``, ``.``; spaces become ``-``.

    Args:
        name: the requested name.

    Returns:
        the name to use.

    Raises:
        VJError: empty, longer than 64 characters, or other characters (no paths).
    """
    cleaned = "-".join(str(name).split())
    if cleaned.endswith(".toml"):
        cleaned = cleaned[: -len(".toml")]
    if not _NAME_RE.match(cleaned) or ".." in cleaned:
        raise VJError(f"bad preset name {name!r}: use 1-64 letters, digits, '-', '_' or '.'")
    return cleaned


def preset_document(classes: Iterable[int], values: Mapping[str, float], description: str = "",
                    params: Iterable[Param] = DEFAULT_PARAMS) -> str:
    """The TOML text of a look (what :func:`save_preset` writes).

    Args:
        classes: ImageNet indices (may be empty).
        values: parameter values; output switches (:data:`NOT_SAVED`), performer settings (:data:`NOT_A_LOOK`),
            triggers and unknown names are left out.
        description: one line.
        params: the known parameters.

    Returns:
        TOML text; class names are given in a comment above the indices.
    """
    import tomli_w

    from vj.models.imagenet import class_names

    known = {p.name: p for p in params}
    kept = {}
    for name in sorted(values):
        p = known.get(name)
        if p is None or p.kind == "trigger" or name in NOT_SAVED or name.startswith(NOT_A_LOOK):
            continue
        v = p.clamp(values[name])
        kept[name] = int(v) if p.kind in ("int", "bool") else round(v, 6)
    doc: dict = {}
    if description:
        doc["description"] = description
    classes = [int(c) for c in classes][:MAX_CLASSES]
    if classes:
        doc["classes"] = classes
    doc["params"] = kept
    head = "# vj preset\n"
    if classes:
        names = class_names()
        head += "# classes: " + ", ".join(names[c] for c in classes) + "\n"
    return head + tomli_w.dumps(doc)


def save_preset(name: str, classes: Iterable[int], values: Mapping[str, float], directory: Path | None = None,
                description: str = "", taken: Iterable[str] = ()) -> Path:
    """Save a look atomically, never overwriting: if ``name`` exists (in ``directory`` or in ``taken``), the
    preset is saved as ``name-2``, ``name-3``, ...

    The text goes to a temporary file in ``directory``, which is then hard-linked to the final name (failing if
    that name appeared meanwhile) and removed, so a reader never sees half a file and nothing is clobbered.

    Args:
        name: requested name (see :func:`check_name`).
        classes: ImageNet indices.
        values: parameter values (see :func:`preset_document` for what is kept).
        directory: where to save (default :func:`user_preset_dir`, created if missing).
        description: one line.
        taken: further names to treat as existing (e.g. the shipped presets).

    Returns:
        the path written.

    Raises:
        VJError: a bad name; the folder cannot be created or written.
    """
    base = check_name(name)
    directory = Path(directory) if directory is not None else user_preset_dir()
    text = preset_document(classes, values, description)
    taken = set(taken)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".saving-", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            for n in range(1, 1000):
                candidate = base if n == 1 else f"{base}-{n}"
                if candidate in taken:
                    continue
                target = directory / f"{candidate}.toml"
                try:
                    os.link(tmp, target)
                except FileExistsError:
                    continue
                return target
            raise VJError(f"{directory}: too many presets named {base!r}")
        finally:
            os.unlink(tmp)
    except OSError as exc:
        raise VJError(f"cannot save preset in {directory}: {exc.strerror or exc}") from None


class PresetBank:
    """The presets on disk, in name order, with a cursor for next/prev.

    Args:
        dirs: folders to list, later ones overriding earlier ones for the same name (default: the shipped presets,
            then :func:`user_preset_dir`). Missing folders are skipped.

    The folders are re-listed on every call, so a preset saved or copied in during a show appears at once.
    Not thread-safe on its own (:class:`vj.control.crossfade.PresetSwitcher` serialises access).
    """

    def __init__(self, dirs: Iterable[Path] | None = None):
        self.dirs = [Path(d) for d in dirs] if dirs is not None else [shipped_preset_dir(), user_preset_dir()]
        self.current: str | None = None  #: name of the last preset loaded successfully
        self._cursor: str | None = None

    def _files(self) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for d in self.dirs:
            try:
                entries = sorted(d.glob("*.toml"))
            except OSError:
                continue
            for f in entries:
                if not f.name.startswith("."):
                    out[f.stem] = f
        return out

    def names(self) -> list[str]:
        """All preset names, sorted."""
        return sorted(self._files())

    def path(self, name: str) -> Path | None:
        """File of preset ``name`` (the last folder holding it wins), or None."""
        return self._files().get(name)

    def select(self, name_or_index: str | int) -> Preset:
        """Load a preset by name (or by position in :meth:`names`) and make it current.

        Raises:
            VJError: unknown name or index, or an invalid file (``current`` is unchanged).
        """
        names = self.names()
        if isinstance(name_or_index, int) and not isinstance(name_or_index, bool):
            if not 0 <= name_or_index < len(names):
                raise VJError(f"no preset number {name_or_index} (there are {len(names)})")
            name = names[name_or_index]
        else:
            name = str(name_or_index)
        path = self.path(name)
        if path is None:
            near = difflib.get_close_matches(name, names, n=3)
            hint = f"; closest: {', '.join(near)}" if near else ""
            raise VJError(f"no preset named {name!r}{hint}")
        self._cursor = name
        preset = load_preset(path)
        self.current = name
        return preset

    def step(self, delta: int) -> Preset:
        """Load the preset ``delta`` places after the cursor (wrapping), e.g. +1 next, -1 previous.

        The cursor moves even when that preset is invalid (VJError raised), so the next step gets past it.

        Raises:
            VJError: there are no presets; the preset is invalid.
        """
        names = self.names()
        if not names:
            raise VJError(f"no presets found (looked in {', '.join(map(str, self.dirs))})")
        if self._cursor in names:
            i = (names.index(self._cursor) + delta) % len(names)
        else:
            i = 0 if delta >= 0 else len(names) - 1
        return self.select(names[i])

    def next(self) -> Preset:
        """Load the next preset (see :meth:`step`)."""
        return self.step(1)

    def prev(self) -> Preset:
        """Load the previous preset (see :meth:`step`)."""
        return self.step(-1)
