"""``vj classes QUERY...``: find ImageNet class indices by name (or list them all with ``--all``).

Each QUERY is a piece of a name (case-insensitive) or an index; matching classes are printed one per line as
``INDEX  name, synonym, ...`` in index order. Quote multi-word names: ``vj classes "golden retriever"``.
"""

from __future__ import annotations

HELP = "look up ImageNet class indices by name (BigGAN's class vector)"


def configure(parser) -> None:
    """Add the ``classes`` arguments: positional QUERY..., ``--all``."""
    parser.add_argument("query", nargs="*", metavar="QUERY", help="piece of a class name, or an index 0..999")
    parser.add_argument("--all", action="store_true", help="list all 1000 classes")


def run(args) -> int:
    """Print the matching classes.

    Returns:
        0 when something matched.

    Raises:
        VJError: no QUERY and no ``--all``; a QUERY that matches nothing (message lists the closest names).
    """
    from vj.errors import VJError
    from vj.models import imagenet

    if args.all:
        rows = [(i, imagenet.synonyms(i)) for i in range(imagenet.NUM_CLASSES)]
    else:
        if not args.query:
            raise VJError("give a QUERY (part of a class name, or an index), or --all")
        found: dict[int, list[str]] = {}
        for q in args.query:
            hits = imagenet.search(q)
            if not hits:
                if q.strip().lstrip("+-").isdigit():
                    raise VJError(f"class index {q} out of range (0..{imagenet.NUM_CLASSES - 1})")
                near = imagenet.closest(q)
                hint = ", ".join(f"{imagenet.class_names()[i]} ({i})" for i in near) or "none"
                raise VJError(f"no class matches {q!r}; closest: {hint}")
            found.update(hits)
        rows = sorted(found.items())
    for i, names in rows:
        print(f"{i:>3}  {', '.join(names)}")
    return 0
