"""The zerofs command line: the typer app, its start-up fast path, and what each command runs."""
