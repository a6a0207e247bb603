"""pytest plugin: a ``gradcheck`` fixture and command-line defaults for tolerance and method.

Registered through the ``pytest11`` entry point, so installing gradcheck is enough::

    def test_my_layer(gradcheck):
        gradcheck(forward, forward_backward, params)          # raises with the report
        gradcheck.layer(affine_forward, affine_backward, {"x": x, "w": w, "b": b})

``pytest --gradcheck-tol 1e-6 --gradcheck-method complex`` changes the defaults of every
check made through the fixture; keyword arguments given in a test still win. The options are
validated once when pytest starts (a bad value stops pytest with one sentence, exit code 4),
and a failing check shows only its report: gradcheck's own frames are hidden
(``__tracebackhide__``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from gradcheck.testing import assert_gradients, assert_layer_gradients

#: The schemes of ``method=`` (and ``--gradcheck-method``).
METHODS = ("central", "forward", "backward", "central4", "richardson", "complex", "auto")
#: (command-line option, keyword of gradcheck.check)
OPTIONS = (("--gradcheck-tol", "tol"), ("--gradcheck-method", "method"), ("--gradcheck-h", "h"),
           ("--gradcheck-strict", "strict"))


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("gradcheck", "numerical gradient checks (gradcheck fixture)")
    group.addoption("--gradcheck-tol", default=None, metavar="TOL",
                    help="default tolerance of the gradcheck fixture (gradcheck's 1e-5 if unset)")
    group.addoption("--gradcheck-method", default=None, metavar="METHOD",
                    help="default scheme of the gradcheck fixture: " + ", ".join(METHODS) +
                    " (gradcheck's central if unset)")
    group.addoption("--gradcheck-h", default=None, metavar="H",
                    help="default step of the gradcheck fixture (a positive number or auto)")
    group.addoption("--gradcheck-strict", action="store_true", default=False,
                    help="strict gradcheck fixture: also fail small discrepancies far outside "
                    "their error bars, and gradients in a lower precision than their parameter")


def _positive(option: str, text: str, allow_auto: bool = False) -> float | str:
    if allow_auto and text == "auto":
        return text
    try:
        x = float(text)
    except (TypeError, ValueError):
        x = float("nan")
    if not (math.isfinite(x) and x > 0):
        extra = ", or auto" if allow_auto else ""
        raise pytest.UsageError(f"{option} {text}: give a finite positive number such as "
                                f"1e-5{extra}.")
    return x


def defaults_from(config: Any) -> dict[str, Any]:
    """The fixture's defaults from the command line, validated (``pytest.UsageError``)."""
    out: dict[str, Any] = {}
    tol = config.getoption("--gradcheck-tol")
    if tol is not None:
        out["tol"] = _positive("--gradcheck-tol", tol)
    method = config.getoption("--gradcheck-method")
    if method is not None:
        if method not in METHODS:
            raise pytest.UsageError(f"--gradcheck-method {method}: choose one of "
                                    f"{', '.join(METHODS)}.")
        out["method"] = method
    h = config.getoption("--gradcheck-h")
    if h is not None:
        out["h"] = _positive("--gradcheck-h", h, allow_auto=True)
    if config.getoption("--gradcheck-strict"):
        out["strict"] = True
    return out


_DEFAULTS_KEY = pytest.StashKey[dict]()


def pytest_configure(config: Any) -> None:
    """Validate the options once, before any test runs."""
    config.stash[_DEFAULTS_KEY] = defaults_from(config)


@dataclass
class GradcheckFixture:
    """Callable like :func:`gradcheck.assert_gradients`, with the command line's defaults.

    ``defaults`` holds the options from ``--gradcheck-tol`` / ``--gradcheck-method`` /
    ``--gradcheck-h`` / ``--gradcheck-strict``; options passed in a call override them.
    """

    defaults: dict[str, Any] = field(default_factory=dict)

    def options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        return {**self.defaults, **given}

    def __call__(self, forward: Callable[[Any], Any], forward_backward: Callable[[Any], Any],
                 params: Any, **options: Any) -> Any:
        __tracebackhide__ = True
        return assert_gradients(forward, forward_backward, params, **self.options(options))

    def layer(self, forward: Callable[..., Any], backward: Callable[..., Any] | None,
              inputs: Mapping[str, Any] | Sequence[Any], **options: Any) -> Any:
        """Assert a ``forward``/``backward(dout, cache)`` layer (see :func:`check_layer`)."""
        __tracebackhide__ = True
        return assert_layer_gradients(forward, backward, inputs, **self.options(options))


@pytest.fixture
def gradcheck(request: Any) -> GradcheckFixture:
    """An assert function for gradient checks, configured from the pytest command line."""
    defaults = request.config.stash.get(_DEFAULTS_KEY, None)
    if defaults is None:
        defaults = defaults_from(request.config)
    return GradcheckFixture(dict(defaults))
