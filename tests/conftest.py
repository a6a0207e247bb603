"""Shared test set-up: the toy problems of ``problems.py`` on the import path and as fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import problems  # noqa: E402


@pytest.fixture
def tanh_problem() -> problems.Problem:
    """The README's quickstart model: ``(forward, forward_backward, params)``."""
    return problems.tanh_model()
