"""Shared test set-up: the toy problems of ``problems.py`` on the import path and as fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

import problems  # noqa: E402

# Property tests draw the same examples on every run (CI included): a failure is reproducible
# and never a coin toss. GRADCHECK_HYPOTHESIS=explore draws new ones.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("GRADCHECK_HYPOTHESIS", "repeatable"))


@pytest.fixture
def tanh_problem() -> problems.Problem:
    """The README's quickstart model: ``(forward, forward_backward, params)``."""
    return problems.tanh_model()
