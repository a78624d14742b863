"""ImageNet-1k class labels in BigGAN's class-vector order, with synonyms, offline.

BigGAN's 1000-d class vector follows the ILSVRC-2012 class order (synsets sorted by WordNet id). The table is
bundled as ``vj/data/imagenet_classes.tsv`` (``index<TAB>synset<TAB>names``, names comma-separated, the first
being the primary name); the names are WordNet lemmas, taken once from timm's data files
(``timm/data/_info/imagenet_synsets.txt`` and ``imagenet_synset_to_lemma.txt``). vj does not depend on timm.

Examples::

    >>> class_names()[107]
    'jellyfish'
    >>> resolve_classes(["daisy", "Golden Retriever", 1, "985"])
    [985, 207, 1, 985]
"""

from __future__ import annotations

import difflib
import operator
from functools import lru_cache

from vj.errors import VJError
from vj.resources import data_path

NUM_CLASSES = 1000
"""Number of ImageNet-1k classes (length of BigGAN's class vector)."""

TABLE_FILE = "imagenet_classes.tsv"


@lru_cache(maxsize=1)
def _table() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Read the bundled table once: one (synset, names) pair per class index."""
    path = data_path(TABLE_FILE)
    rows: list[tuple[str, tuple[str, ...]]] = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:  # a broken install, not something a test can provoke cheaply
        raise VJError(f"ImageNet class table missing: {path} ({exc.strerror})") from None
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        index, synset, names = line.split("\t")
        if int(index) != len(rows):
            raise VJError(f"ImageNet class table {path} is corrupt near index {index}")
        rows.append((synset, tuple(n.strip() for n in names.split(",") if n.strip())))
    if len(rows) != NUM_CLASSES:
        raise VJError(f"ImageNet class table {path} has {len(rows)} classes, expected {NUM_CLASSES}")
    return tuple(rows)


def _norm(name: str) -> str:
    """Case-fold and collapse whitespace/underscores so ``Golden_Retriever`` matches ``golden retriever``."""
    return " ".join(name.replace("_", " ").split()).casefold()


@lru_cache(maxsize=1)
def _synonym_index() -> dict[str, tuple[int, ...]]:
    """Normalised synonym -> class indices having it (a few names, e.g. 'crane', belong to two classes)."""
    out: dict[str, list[int]] = {}
    for i, (_, names) in enumerate(_table()):
        for n in names:
            out.setdefault(_norm(n), [])
            if i not in out[_norm(n)]:
                out[_norm(n)].append(i)
    return {k: tuple(v) for k, v in out.items()}


def class_names() -> list[str]:
    """Primary name of every class, in BigGAN's index order.

    Returns:
        list of 1000 str; ``class_names()[i]`` names class vector entry ``i`` (0 = 'tench', 107 = 'jellyfish').
    """
    return [names[0] for _, names in _table()]


def synset(index: int) -> str:
    """WordNet synset id of class ``index`` (e.g. ``'n01910747'`` for 107).

    Raises:
        VJError: ``index`` is not an integer in 0..999.
    """
    return _table()[_check_index(index)][0]


def synonyms(index: int) -> list[str]:
    """All names of class ``index``, primary name first.

    Args:
        index: class index, 0..999.

    Returns:
        list of str, e.g. ``synonyms(1) == ['goldfish', 'Carassius auratus']``.

    Raises:
        VJError: ``index`` is not an integer in 0..999.
    """
    return list(_table()[_check_index(index)][1])


def _check_index(index) -> int:
    try:
        i = operator.index(index)
    except TypeError:
        raise VJError(f"class index must be an integer, got {index!r}") from None
    if isinstance(index, bool) or not 0 <= i < NUM_CLASSES:
        raise VJError(f"class index {index!r} out of range (0..{NUM_CLASSES - 1})")
    return i


def _label(i: int) -> str:
    return f"{class_names()[i]} ({i})"


def closest(name: str, n: int = 5) -> list[int]:
    """Indices of the classes whose synonyms are spelled most like ``name`` (``difflib`` ratio), best first.

    Args:
        name: a misspelt or unknown class name.
        n: at most this many indices.

    Returns:
        list of distinct class indices, possibly empty.
    """
    syn = _synonym_index()
    out: list[int] = []
    for match in difflib.get_close_matches(_norm(name), list(syn), n=4 * n, cutoff=0.6):
        for i in syn[match]:
            if i not in out:
                out.append(i)
    return out[:n]


def _unknown(name: str) -> VJError:
    near = closest(name)
    hint = "closest: " + ", ".join(_label(i) for i in near) if near else "search with `vj classes QUERY`"
    return VJError(f"unknown class {name!r}; {hint}")


def resolve_class(item: str | int) -> int:
    """One class given as an index or a name → its index.

    Rules, in order: an ``int`` (or a string of digits) is an index 0..999; a name equal to one synonym
    (case-insensitive, ``_`` = space) picks its class, preferring the class whose primary name it is; otherwise
    a name that starts a word inside the synonyms of exactly one class picks that class (``"retriever"``
    matches five classes and is therefore ambiguous, ``"jelly"`` matches only jellyfish).

    Args:
        item: index (int, or str like ``"107"``) or name (str like ``"golden retriever"``).

    Returns:
        class index, 0..999.

    Raises:
        VJError: index out of range; unknown name (message lists the closest names); ambiguous name.
    """
    if isinstance(item, str):
        text = item.strip()
        if text.lstrip("+-").isdigit():
            return _check_index(int(text))
        key = _norm(text)
        if not key:
            raise VJError("empty class name")
        exact = _synonym_index().get(key, ())
        if len(exact) > 1:
            primary = [i for i in exact if _norm(class_names()[i]) == key]
            exact = tuple(primary) if len(primary) == 1 else exact
        if len(exact) == 1:
            return exact[0]
        if len(exact) > 1:
            raise VJError(
                f"ambiguous class {item!r}: " + ", ".join(_label(i) for i in exact) + "; give the index instead"
            )
        partial = _partial(key)
        if len(partial) == 1:
            return partial[0]
        if len(partial) > 1:
            shown = ", ".join(_label(i) for i in partial[:6]) + (", ..." if len(partial) > 6 else "")
            raise VJError(f"ambiguous class {item!r} matches {len(partial)} classes: {shown}")
        raise _unknown(text)
    return _check_index(item)


def resolve_classes(items) -> list[int]:
    """Several classes given as indices or names → their indices, in the given order (see :func:`resolve_class`).

    Args:
        items: iterable of int or str, e.g. ``["daisy", "jellyfish", 207, "1"]``.

    Returns:
        list of class indices (0..999), same length and order as ``items``.

    Raises:
        VJError: the first item that is out of range, unknown or ambiguous.
    """
    return [resolve_class(item) for item in items]


def search(query: str | int) -> list[tuple[int, list[str]]]:
    """Classes whose index equals ``query`` or one of whose names contains it (case-insensitive substring).

    Args:
        query: a number 0..999 (int or digit string), or any piece of a name (``"fish"`` finds goldfish,
            jellyfish, lionfish, ...).

    Returns:
        list of ``(index, names)`` in index order, names primary first; empty when nothing matches.
    """
    if isinstance(query, int) or str(query).strip().isdigit():
        i = int(query)
        return [(i, synonyms(i))] if 0 <= i < NUM_CLASSES else []
    key = _norm(str(query))
    if not key:
        return []
    return [(i, list(names)) for i, (_, names) in enumerate(_table()) if any(key in _norm(n) for n in names)]


def _partial(key: str) -> list[int]:
    """Indices of classes with a synonym in which ``key`` (normalised) starts a word."""
    return [i for i, (_, names) in enumerate(_table()) if any(_word_prefix(key, _norm(n)) for n in names)]


def _word_prefix(key: str, name: str) -> bool:
    """True when ``key`` occurs in ``name`` starting at a word boundary (start, or after space/hyphen/quote)."""
    start = name.find(key)
    while start != -1:
        if start == 0 or not name[start - 1].isalnum():
            return True
        start = name.find(key, start + 1)
    return False
