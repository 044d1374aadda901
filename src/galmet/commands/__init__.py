"""One module per ``galmet`` subcommand; :mod:`galmet.cli` discovers them."""
