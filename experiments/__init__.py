"""absl entry points: `python -m experiments.NAME`. Flags live here only."""
