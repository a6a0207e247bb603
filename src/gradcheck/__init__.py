"""gradcheck: numerical gradient checking that says which element is wrong, and why.

>>> import gradcheck as gc
>>> report = gc.check(forward, forward_backward, params)   # doctest: +SKIP
>>> print(report)                                           # doctest: +SKIP
"""

from gradcheck.check import check
from gradcheck.classic import grad_check, numerical_gradient
from gradcheck.derivatives.hvp import check_hvp
from gradcheck.derivatives.jvp import check_jvp
from gradcheck.derivatives.vjp import check_vjp
from gradcheck.errors import ForwardError, GradcheckError, InputError
from gradcheck.layer_check import check_layer
from gradcheck.monitor import GradientAlert, GradientCheckFailed, Monitor
from gradcheck.report.results import EntryResult, Report, TensorReport
from gradcheck.testing import assert_gradients, assert_layer_gradients

__version__ = "0.1.0"

__all__ = [
    "check", "grad_check", "numerical_gradient", "Report", "TensorReport", "EntryResult",
    "GradcheckError", "InputError", "ForwardError", "__version__",
    "check_layer", "assert_gradients", "assert_layer_gradients",
    "Monitor", "GradientAlert", "GradientCheckFailed",
    "check_jvp", "check_hvp", "check_vjp",
]
