"""Assertions for test suites: a failed gradient check raises with the whole report.

>>> from gradcheck.testing import assert_gradients
>>> assert_gradients(forward, forward_backward, params)        # doctest: +SKIP

The message of the ``AssertionError`` is the rendered report — the per-tensor table, the
worst entries by name (``W[2,3]``) and the likely bug — so a failing test says what is
wrong without re-running anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gradcheck.check import check
from gradcheck.layer_check import check_layer
from gradcheck.report.results import Report


def _verify(report: Report, allow_inconclusive: bool) -> Report:
    __tracebackhide__ = True  # pytest: show the test's line and the report, not this frame
    if report.status == "pass" or (allow_inconclusive and report.status == "inconclusive"):
        return report
    hint = ""
    if report.status == "inconclusive":
        hint = ("\n(inconclusive is not a pass: follow the report's advice, or pass "
                "allow_inconclusive=True if that is acceptable here)")
    raise AssertionError(f"{report}{hint}")


def assert_gradients(forward: Callable[[Any], Any], forward_backward: Callable[[Any], Any],
                     params: Any, *, allow_inconclusive: bool = False,
                     **options: Any) -> Report:
    """Run :func:`gradcheck.check` and raise ``AssertionError`` unless it passes.

    Parameters
    ----------
    forward, forward_backward, params, **options : as for :func:`gradcheck.check`.
    allow_inconclusive : also accept an inconclusive verdict (default False: a check that
        could not decide is not silently a pass).

    Returns
    -------
    Report
        The passing report (for further assertions).

    Raises
    ------
    AssertionError
        With the rendered report as its message.
    """
    __tracebackhide__ = True
    return _verify(check(forward, forward_backward, params, **options), allow_inconclusive)


def assert_layer_gradients(forward: Callable[..., Any], backward: Callable[..., Any] | None,
                           inputs: Mapping[str, Any] | Sequence[Any], *,
                           allow_inconclusive: bool = False, **options: Any) -> Report:
    """:func:`gradcheck.check_layer` as an assertion (same arguments, same message rules)."""
    __tracebackhide__ = True
    return _verify(check_layer(forward, backward, inputs, **options), allow_inconclusive)
