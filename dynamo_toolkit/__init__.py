"""dynamo-toolkit: the components of a Dynamo-style key-value store, as plugins."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dynamo-toolkit")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
