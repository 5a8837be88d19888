"""``python -m zerofs``: the same entry point as the ``zerofs`` console script."""

from zerofs.cli.main import main

raise SystemExit(main())
