"""Canopy's backend service: HTTP and WebSocket API, authentication, and (as they arrive) the
runtime, debug pods and the incident pipeline."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("canopy-debug")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
