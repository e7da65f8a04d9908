"""The command line: Typer only, options in, settings out. Nothing outside this package imports it."""
