"""Command-line entry points: the ``gridpatrol`` CLI (:mod:`scripts.cli`)."""
