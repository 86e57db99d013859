"""The ``full-exchange`` anti-entropy baseline (work in progress)."""
