"""Use cases: each module takes a Repository and returns data; they never import each other."""
