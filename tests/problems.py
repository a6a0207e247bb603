"""Toy problems with known derivatives, shared by the tests (``conftest.py`` puts this folder on
``sys.path``; import as ``from problems import ...``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Problem = tuple[Callable[[Any], Any], Callable[[Any], Any], Any]


def exp_sin(x: np.ndarray) -> float:
    """``f(x) = Σ exp(x_i)·sin(x_i)``; derivative :func:`exp_sin_grad`."""
    return np.sum(np.exp(x) * np.sin(x))


def exp_sin_grad(x: np.ndarray) -> np.ndarray:
    """``f'(x) = exp(x)·(sin x + cos x)``."""
    return np.exp(x) * (np.sin(x) + np.cos(x))


def cubic(p: dict[str, np.ndarray]) -> float:
    """``Σ x³`` of ``p["x"]``."""
    return float(np.sum(p["x"] ** 3))


def cubic_grad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``3x²``."""
    return {"x": 3 * p["x"] ** 2}


def tanh_model(scale: float = 1.0, dtype: Any = np.float64) -> Problem:
    """Least squares through a tanh unit, the README's quickstart model, times ``scale``:
    ``L = scale · ½‖tanh(Xw + b) − y‖²``, with its exact gradient."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(8, 3)).astype(dtype)
    y = rng.normal(size=8).astype(dtype)
    params = {"w": rng.normal(size=3).astype(dtype), "b": np.array(0.1, dtype=dtype)}

    def forward(p):
        r = np.tanh(X @ p["w"] + p["b"]) - y
        return scale * 0.5 * (r @ r)

    def forward_backward(p):
        t = np.tanh(X @ p["w"] + p["b"])
        d = scale * (t - y) * (1 - t**2)
        return scale * 0.5 * ((t - y) @ (t - y)), {"w": X.T @ d, "b": d.sum()}

    return forward, forward_backward, params
