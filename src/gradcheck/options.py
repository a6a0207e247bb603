"""The options of :func:`gradcheck.check`, validated once into a frozen :class:`Plan`.

:func:`make_plan` is the only place that looks at what the user passed: it checks every value
(one plain sentence per mistake), fills in defaults, and returns a plan no stage may change.
What a run decides later — the scheme ``method="auto"`` picked, the step it took, the model's
gradient scale, whether the complex step rescues inconclusive entries — lives in the run's own
state (:class:`gradcheck.modes.Problem`) and in the report's ``decisions``, never in the plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from gradcheck.errors import InputError
from gradcheck.estimate.schemes import AUTO_REAL, Scheme, get_scheme

#: Keys of ``context=``: facts about the model that let the diagnosis name a bug.
CONTEXT_KEYS = ("batch_size", "seq_len", "time_axis", "repeated_rows")
MODES = ("elementwise", "directional")


@dataclass(frozen=True)
class Plan:
    """The validated options of one check (see :func:`gradcheck.check` for each one)."""

    method: str = "central"
    h: float | str | None = None
    relative_step: bool = False
    tol: float = 1e-5
    measure: str = "relative"
    denominator: str = "max"
    floor: float = 1e-8
    promote: bool = True
    sample: Any = None
    sample_seed: int = 0
    seed: int | None = None
    reset: Callable[[], None] | None = None
    loss_scale: float = 1.0
    mode: str = "elementwise"
    batched_forward: Callable[[Any], Any] | None = None
    batch_size: int | None = None
    executor: Any = None
    workers: int | None = None
    progress: bool = True
    second_look: bool = True
    context: dict[str, Any] | None = None
    diagnose: bool = True
    #: The scheme asked for (``method="auto"``: its real fallback until the run decides).
    scheme: Scheme = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    @property
    def nominal_h(self) -> float:
        """The step asked for, or the scheme's default when ``h="auto"``."""
        return self.scheme.default_h if self.h == "auto" else float(self.h)  # type: ignore[arg-type]

    def public(self) -> dict[str, Any]:
        """The options as the user asked for them (callables and executors by name)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "scheme"}
        if d["reset"] is not None:
            d["reset"] = getattr(d["reset"], "__name__", "callable")
        for key in ("batched_forward", "executor"):
            if d[key] is not None:
                d[key] = getattr(d[key], "__name__", type(d[key]).__name__)
        return d


OPTION_NAMES = tuple(f.name for f in fields(Plan) if f.name != "scheme")


def make_plan(options: dict[str, Any]) -> Plan:
    """Validate keyword options of :func:`gradcheck.check` into a :class:`Plan`.

    Raises TypeError for a misspelt option name and :class:`InputError` for a bad value, each
    with one sentence saying what to pass instead.
    """
    unknown = sorted(set(options) - set(OPTION_NAMES))
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)}; valid options are "
                        f"{', '.join(sorted(OPTION_NAMES))}.")
    given = {**{f.name: f.default for f in fields(Plan) if f.name != "scheme"}, **options}
    method, h = given["method"], given["h"]
    if method == "auto" and h not in (None, "auto"):
        raise InputError(f"h={h!r} with method='auto': auto chooses the scheme and its "
                         "step; leave h unset or pick a method such as 'central'.")
    scheme = get_scheme(AUTO_REAL if method == "auto" else method)
    if h is None:
        given["h"] = scheme.default_h
    elif h != "auto" and not (isinstance(h, (int, float)) and np.isfinite(h) and h > 0):
        raise InputError(f"h={h!r} must be a positive number such as 1e-5.")
    tol = given["tol"]
    if not (isinstance(tol, (int, float)) and tol > 0):
        raise InputError(f"tol={tol!r} must be a positive number such as 1e-5.")
    if given["measure"] not in ("relative", "absolute"):
        raise InputError(f"measure={given['measure']!r}: choose 'relative' or 'absolute'.")
    if given["denominator"] not in ("max", "abs_analytic", "sum"):
        raise InputError(f"denominator={given['denominator']!r}: choose 'max' (max(|a|,|n|)), "
                         "'abs_analytic' (|a|) or 'sum' (|a|+|n|).")
    scale = given["loss_scale"]
    if not (isinstance(scale, (int, float)) and scale > 0):
        raise InputError(f"loss_scale={scale!r} must be a positive number.")
    _validate_speed_options(given)
    _validate_context(given["context"])
    return Plan(**given, scheme=scheme)


def _validate_speed_options(o: dict[str, Any]) -> None:
    """Checks of mode, batched_forward, batch_size, executor and workers."""
    if o["mode"] not in MODES:
        raise InputError(f"mode={o['mode']!r}: choose 'elementwise' (every entry, default) or "
                         "'directional' (one random direction per tensor, then localise).")
    batched, batch_size, workers = o["batched_forward"], o["batch_size"], o["workers"]
    executor = o["executor"]
    if batched is not None and not callable(batched):
        raise InputError(f"batched_forward={batched!r} is not callable; pass a "
                         "function of stacked params that returns a vector of losses.")
    if batch_size is not None and not (isinstance(batch_size, int) and batch_size >= 1):
        raise InputError(f"batch_size={batch_size!r} must be a positive integer such as 64.")
    if workers is not None and not (isinstance(workers, int) and workers >= 1):
        raise InputError(f"workers={workers!r} must be a positive integer such as 2.")
    if executor is not None and not hasattr(executor, "submit"):
        raise InputError(f"executor={executor!r} has no submit(); pass a "
                         "concurrent.futures.Executor such as ProcessPoolExecutor() or a "
                         "Dask client.get_executor().")
    if executor is not None and workers is not None:
        raise InputError("pass either executor= or workers=, not both (workers=N starts a "
                         "local process pool).")


def _validate_context(context: Any) -> None:
    if context is None:
        return
    if not isinstance(context, dict):
        raise InputError(f"context={context!r} must be a dict such as "
                         "{'batch_size': 32, 'seq_len': 10}.")
    unknown = sorted(set(context) - set(CONTEXT_KEYS))
    if unknown:
        raise InputError(f"context has unknown key(s) {', '.join(unknown)}; known keys are "
                         f"{', '.join(CONTEXT_KEYS)}.")
