"""The ``vj`` command line: ``vj live | render | analyze | classes | devices | bench | weights``.

Each subcommand lives in its own module under :mod:`vj.commands`, exposing

* ``HELP`` — one line for ``vj --help``;
* ``configure(parser)`` — adds the subcommand's arguments (cheap: no heavy imports at module level);
* ``run(args) -> int`` — does the work and returns the exit status.

Errors the user can cause are raised as :class:`vj.errors.VJError` and printed here as one line
(``vj: error: ...``) with a non-zero exit status; Ctrl-C exits with 130. Tracebacks are shown only with
``--debug``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from vj import __version__
from vj.errors import VJError

#: subcommand name -> module under vj.commands
COMMANDS = ("live", "render", "analyze", "classes", "devices", "bench", "weights")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vj",
        description="A live VJ instrument: music in, BigGAN-deep imagery out.",
    )
    parser.add_argument("--version", action="version", version=f"vj {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"vj.commands.{name}")
        except ModuleNotFoundError as exc:  # a command not built yet in this checkout
            if exc.name != f"vj.commands.{name}":
                raise
            continue
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.configure(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="vj: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    try:
        return int(args._module.run(args) or 0)
    except VJError as exc:
        if args.debug:
            raise
        print(f"vj: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("vj: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
