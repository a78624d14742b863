"""One module per ``vj`` subcommand (see :mod:`vj.cli` for the protocol)."""
