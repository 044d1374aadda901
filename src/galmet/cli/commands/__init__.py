"""One module per ``galmet`` subcommand; :mod:`galmet.cli.main` discovers them."""
