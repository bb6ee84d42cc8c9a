"""mox-reconciler: a GitOps controller for the mox mail server."""

__version__ = "0.1.0"
