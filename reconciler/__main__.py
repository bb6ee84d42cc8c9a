"""`python -m reconciler` runs the CLI."""

from .cli import entrypoint

entrypoint()
