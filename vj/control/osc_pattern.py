"""OSC 1.0 address-pattern matching without backtracking: compile once, match part by part with bit-parallel DP.

An OSC address pattern (``/vj/fx/*/amount``, ``/vj/gan/{depth,jitter}``) is split at ``/`` into parts; a pattern
matches an address with the same number of parts when every pattern part matches the address part at its place.
Within a part (OSC 1.0 specification, "OSC Message Dispatching and Pattern Matching"):

* ``?`` matches one character, ``*`` any run of zero or more characters;
* ``[abc]``, ``[a-z]`` one character of the set (``-`` between two characters is a range, first or last it is
  literal); ``[!...]`` one character *not* in the set;
* ``{foo,bar}`` one of the comma-separated strings (taken literally);
* any other character matches itself.

A pattern part is matched against a word by dynamic programming over the word's positions, with the set of
positions reachable after each token held as the bits of one Python int (the bit-parallel "shift-and" simulation
of the part's non-deterministic automaton; Baeza-Yates & Gonnet, "A new approach to text searching", CACM 1992).
Each token costs a few integer operations on ``len(word) + 1`` bits, an alternative group one per alternative, so
a part costs O(tokens × ⌈len(word) / 64⌉) word operations: linear in the pattern for a given address and linear in
the address for a given pattern, never exponential (a backtracking regex of ``*`` × 250 takes seconds per
address). Runs of ``*`` collapse into one at compile time, and a part whose shortest match is longer than a word
(or whose longest match, without ``*``, is shorter) is rejected without running the DP.

:class:`AddressSpace` holds a fixed set of addresses as a trie of parts, so a pattern part is matched once per
distinct word at its depth, and only below the parts that already matched.
"""

from __future__ import annotations

import functools
from typing import Iterable

MAX_PATTERN = 256
"""Longer patterns are refused [characters]."""

_STAR, _ONE, _CHARS, _SET, _ALT = range(5)
"""Token kinds: ``*``; ``?``; a literal character; ``[...]``; ``{...}``."""


class PatternError(ValueError):
    """The text is not a valid OSC address pattern (unbalanced ``[``/``{``, an empty set, ``/`` inside a group, or
    longer than :data:`MAX_PATTERN`)."""


class _CharSet:
    """The characters of one ``[...]``: single characters, ranges, optionally negated."""

    __slots__ = ("chars", "ranges", "negate")

    def __init__(self, body: str):
        self.negate = body.startswith("!") and len(body) > 1
        if self.negate:
            body = body[1:]
        chars, ranges, i = set(), [], 0
        while i < len(body):
            if i + 2 < len(body) and body[i + 1] == "-":
                ranges.append((body[i], body[i + 2]))
                i += 3
            else:
                chars.add(body[i])
                i += 1
        self.chars = frozenset(chars)
        self.ranges = tuple(ranges)

    def __contains__(self, c: str) -> bool:
        inside = c in self.chars or any(lo <= c <= hi for lo, hi in self.ranges)
        return inside != self.negate


class Pattern:
    """A compiled address pattern (see :func:`compile_pattern`).

    Attributes:
        text: the pattern as given.
        parts: per ``/``-separated part, a tuple ``(tokens, min_len, max_len)``; ``max_len`` is None when the part
            holds a ``*``. A token is ``(kind, value)``.
    """

    __slots__ = ("text", "parts")

    def __init__(self, text: str, parts: tuple):
        self.text = text
        self.parts = parts

    def match(self, address: str) -> bool:
        """True if the pattern matches ``address`` (a plain OSC address, e.g. ``/vj/fx/zoom/amount``)."""
        words = address.split("/")
        if len(words) != len(self.parts):
            return False
        return all(_part_matches(part, _Word(w)) for part, w in zip(self.parts, words))


class _Word:
    """One address part with its per-character position masks (bit j set where ``text[j] == c``)."""

    __slots__ = ("text", "masks", "full")

    def __init__(self, text: str):
        self.text = text
        masks: dict[str, int] = {}
        for j, c in enumerate(text):
            masks[c] = masks.get(c, 0) | (1 << j)
        self.masks = masks
        self.full = (1 << (len(text) + 1)) - 1  # positions 0..len(text)


def _part_matches(part: tuple, word: _Word, cache: dict | None = None) -> bool:
    tokens, min_len, max_len = part
    n = len(word.text)
    if n < min_len or (max_len is not None and n > max_len):
        return False
    reach = 1  # bit j: the tokens so far can match word[:j]
    for kind, value in tokens:
        if kind == _CHARS:
            reach = (reach & word.masks.get(value, 0)) << 1
        elif kind == _ONE:
            reach = (reach << 1) & word.full
        elif kind == _STAR:
            low = reach & -reach
            reach = word.full ^ (low - 1)
        elif kind == _SET:
            key = (id(value), word.text)
            mask = cache.get(key) if cache is not None else None
            if mask is None:
                mask = 0
                for c, m in word.masks.items():
                    if c in value:
                        mask |= m
                if cache is not None:
                    cache[key] = mask
            reach = (reach & mask) << 1
        else:  # _ALT: value is a tuple of distinct literal strings
            out = 0
            for s in value:
                if not s:
                    out |= reach
                    continue
                key = (s, word.text)
                occ = cache.get(key) if cache is not None else None
                if occ is None:  # bit j: s starts at word[j]
                    occ, j = 0, word.text.find(s)
                    while j >= 0:
                        occ |= 1 << j
                        j = word.text.find(s, j + 1)
                    if cache is not None:
                        cache[key] = occ
                out |= (reach & occ) << len(s)
            reach = out
        if not reach:
            return False
    return bool(reach >> n & 1)


def _compile_part(text: str) -> tuple:
    tokens: list[tuple[int, object]] = []
    min_len, star = 0, False
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "*":
            if not (tokens and tokens[-1][0] == _STAR):
                tokens.append((_STAR, None))
            star = True
        elif c == "?":
            tokens.append((_ONE, None))
            min_len += 1
        elif c == "[":
            j = text.find("]", i + 1)
            if j < 0:
                raise PatternError("unbalanced '['")
            body = text[i + 1 : j]
            if not body or body == "!":
                raise PatternError("empty '[]'")
            tokens.append((_SET, _CharSet(body)))
            min_len += 1
            i = j
        elif c == "{":
            j = text.find("}", i + 1)
            if j < 0:
                raise PatternError("unbalanced '{'")
            alts = tuple(dict.fromkeys(text[i + 1 : j].split(",")))
            tokens.append((_ALT, alts))
            min_len += min(len(a) for a in alts)
            i = j
        elif c in "]}":
            raise PatternError(f"unbalanced {c!r}")
        else:
            tokens.append((_CHARS, c))
            min_len += 1
        i += 1
    max_len = None
    if not star:
        max_len = sum(1 if k != _ALT else max(len(a) for a in v) for k, v in tokens)
    return tuple(tokens), min_len, max_len


@functools.lru_cache(maxsize=256)
def compile_pattern(text: str) -> Pattern:
    """Compile an OSC address pattern.

    Args:
        text: the pattern, e.g. ``"/vj/fx/*/amount"`` (at most :data:`MAX_PATTERN` characters).

    Returns:
        the :class:`Pattern`. Compiling costs O(len(text)); the last 256 patterns are cached.

    Raises:
        PatternError: too long, unbalanced ``[`` or ``{``, a stray ``]`` or ``}``, an empty ``[]``, or ``/`` inside
            ``[...]`` or ``{...}``.
    """
    if len(text) > MAX_PATTERN:
        raise PatternError(f"longer than {MAX_PATTERN} characters")
    parts, start, depth = [], 0, ""
    for i, c in enumerate(text):  # split at '/' outside groups; a '/' inside one is an error
        if depth:
            if c == depth:
                depth = ""
            elif c == "/":
                raise PatternError("'/' inside a '[...]' or '{...}'")
        elif c in "[{":
            depth = "]" if c == "[" else "}"
        elif c == "/":
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return Pattern(text, tuple(_compile_part(p) for p in parts))


def is_pattern(address: str) -> bool:
    """True if ``address`` holds any of the pattern characters ``* ? [ ] { }``."""
    return any(c in address for c in "*?[]{}")


class _Node:
    __slots__ = ("children", "values")

    def __init__(self):
        self.children: dict[str, tuple[_Word, _Node]] = {}
        self.values: list = []


class AddressSpace:
    """A fixed set of addresses that patterns are matched against (e.g. every parameter address of vj).

    Args:
        items: ``(address, value)`` pairs; :meth:`match` returns the values of the addresses a pattern matches,
            in the order given.
    """

    def __init__(self, items: Iterable[tuple[str, object]]):
        self._root = _Node()
        self._order: dict[int, int] = {}
        for k, (address, value) in enumerate(items):
            node = self._root
            for w in address.split("/"):
                if w not in node.children:
                    node.children[w] = (_Word(w), _Node())
                node = node.children[w][1]
            node.values.append((k, value))

    def match(self, pattern: Pattern | str) -> list:
        """Values of every address ``pattern`` matches (a :class:`Pattern` or text for :func:`compile_pattern`).

        Raises:
            PatternError: ``pattern`` is text that does not compile.
        """
        if isinstance(pattern, str):
            pattern = compile_pattern(pattern)
        frontier = [self._root]
        cache: dict = {}
        for part in pattern.parts:
            seen: dict[str, bool] = {}
            nxt = []
            for node in frontier:
                for text, (word, child) in node.children.items():
                    ok = seen.get(text)
                    if ok is None:
                        ok = seen[text] = _part_matches(part, word, cache)
                    if ok:
                        nxt.append(child)
            frontier = nxt
            if not frontier:
                return []
        hits = sorted(v for node in frontier for v in node.values)
        return [value for _, value in hits]
