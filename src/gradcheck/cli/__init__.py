"""The command line: ``gradcheck demo|check|sweep ...`` (see :func:`main`)."""

from gradcheck.cli.app import main

__all__ = ["main"]
