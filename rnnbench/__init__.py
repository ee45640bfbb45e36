"""rnnbench: an experiment-tracking benchmark harness for recurrent networks."""

from importlib import metadata

try:
    __version__ = metadata.version("rnnbench")
except metadata.PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "unknown"
