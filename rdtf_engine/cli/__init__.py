"""Entry point of the `rdtf` command."""

from rdtf_engine.cli.main import main

__all__ = ["main"]
