"""`python -m reconciler` runs the CLI."""

from reconciler.cli.main import entrypoint

entrypoint()
