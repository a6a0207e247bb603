"""pytest plugin: a ``gradcheck`` fixture and command-line defaults for tolerance and method.

Registered through the ``pytest11`` entry point, so installing gradcheck is enough::

    def test_my_layer(gradcheck):
        gradcheck(forward, forward_backward, params)          # raises with the report
        gradcheck.layer(affine_forward, affine_backward, {"x": x, "w": w, "b": b})

``pytest --gradcheck-tol 1e-6 --gradcheck-method complex`` changes the defaults of every
check made through the fixture; keyword arguments given in a test still win.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from gradcheck.testing import assert_gradients, assert_layer_gradients


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("gradcheck", "numerical gradient checks (gradcheck fixture)")
    group.addoption("--gradcheck-tol", type=float, default=None, metavar="TOL",
                    help="default tolerance of the gradcheck fixture (gradcheck's 1e-5 if unset)")
    group.addoption("--gradcheck-method", default=None, metavar="METHOD",
                    help="default scheme of the gradcheck fixture: central, forward, backward, "
                         "complex (gradcheck's default if unset)")
    group.addoption("--gradcheck-h", type=float, default=None, metavar="H",
                    help="default step of the gradcheck fixture")


@dataclass
class GradcheckFixture:
    """Callable like :func:`gradcheck.assert_gradients`, with the command line's defaults.

    ``defaults`` holds the options from ``--gradcheck-tol`` / ``--gradcheck-method`` /
    ``--gradcheck-h``; options passed in a call override them.
    """

    defaults: dict[str, Any] = field(default_factory=dict)

    def options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        return {**self.defaults, **given}

    def __call__(self, forward: Callable[[Any], Any], forward_backward: Callable[[Any], Any],
                 params: Any, **options: Any) -> Any:
        return assert_gradients(forward, forward_backward, params, **self.options(options))

    def layer(self, forward: Callable[..., Any], backward: Callable[..., Any] | None,
              inputs: Mapping[str, Any] | Sequence[Any], **options: Any) -> Any:
        """Assert a ``forward``/``backward(dout, cache)`` layer (see :func:`check_layer`)."""
        return assert_layer_gradients(forward, backward, inputs, **self.options(options))


@pytest.fixture
def gradcheck(request: Any) -> GradcheckFixture:
    """An assert function for gradient checks, configured from the pytest command line."""
    cfg = request.config
    defaults: dict[str, Any] = {}
    for opt, key in (("--gradcheck-tol", "tol"), ("--gradcheck-method", "method"),
                     ("--gradcheck-h", "h")):
        value = cfg.getoption(opt)
        if value is not None:
            defaults[key] = value
    return GradcheckFixture(defaults)
