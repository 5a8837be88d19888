"""Storage backends behind one interface (``base.Store``): packs beside an LMDB index, and in memory.

Only ``zerofs.repo`` imports this package (an import-linter contract says so).
"""
