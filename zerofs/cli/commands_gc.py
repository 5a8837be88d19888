"""Command bodies for issue #4 (gc): same contract as ``commands.py``.

Plain functions taking parsed values, named like the typer command that calls
them; commands.__getattr__ finds them for the fast path.
"""

from __future__ import annotations
