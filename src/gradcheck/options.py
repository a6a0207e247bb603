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

from gradcheck import validate
from gradcheck.errors import InputError
from gradcheck.estimate.schemes import AUTO_REAL, Scheme, get_scheme

#: Keys of ``context=``: facts about the model that let the diagnosis name a bug.
CONTEXT_KEYS = ("batch_size", "seq_len", "time_axis", "repeated_rows", "terms", "groups")
MODES = ("elementwise", "directional")
#: The values of ``method=``: every scheme, and ``auto``.
METHODS = ("central", "forward", "backward", "central4", "richardson", "complex", "auto")


@dataclass(frozen=True)
class Plan:
    """The validated options of one check (see :func:`gradcheck.check` for each one)."""

    method: str = "central"
    h: float | str | None = None
    relative_step: bool = False
    tol: float = 1e-5
    measure: str = "relative"
    denominator: str = "max"
    floor: float | None = None
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
    strict: bool = False
    #: call forward_backward a second time and FAIL entries that change between the calls
    #: (issue #10); checks whose "backward" is itself expensive turn it off
    repeat_backward: bool = True
    #: The scheme asked for (``method="auto"``: its real fallback until the run decides).
    scheme: Scheme = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

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

    Raises TypeError for a misspelt option name (naming the closest valid one) and
    :class:`InputError` for a bad value, each with one sentence saying what to pass instead.
    Numpy scalars are accepted wherever a number is (``h=np.float32(1e-3)``,
    ``workers=np.int64(2)``) and stored as Python numbers; booleans are not numbers here.
    """
    message = validate.unknown_names(options, OPTION_NAMES)
    if message:
        raise TypeError(message)
    given = {**{f.name: f.default for f in fields(Plan) if f.name != "scheme"}, **options}
    method = validate.choice("method", given["method"], METHODS, "one of " + ", ".join(METHODS))
    h = given["h"]
    if method == "auto" and h not in (None, "auto"):
        raise InputError(f"h={h!r} with method='auto': auto chooses the scheme and its "
                         "step; leave h unset or pick a method such as 'central'.")
    scheme = get_scheme(AUTO_REAL if method == "auto" else method)
    if h is None and scheme.name != "central":
        given["h"] = scheme.default_h
    elif h is None:
        pass  # central: the first step follows the loss's measured noise (issue #10)
    elif not (isinstance(h, str) and h == "auto"):
        if isinstance(h, str):
            raise InputError(f"h={h!r} must be a finite positive number such as 1e-5, or "
                             "'auto'.")
        given["h"] = validate.positive_number("h", h, "1e-5")
    given["tol"] = validate.positive_number("tol", given["tol"], "1e-5")
    if given["floor"] is not None:  # None: the model's own gradient scale (issue #10)
        given["floor"] = validate.non_negative_number("floor", given["floor"], "1e-8")
    given["loss_scale"] = validate.positive_number("loss_scale", given["loss_scale"], "1e3")
    validate.choice("measure", given["measure"], ("relative", "absolute"))
    validate.choice("denominator", given["denominator"], ("max", "abs_analytic", "sum"),
                    "'max' (max(|a|,|n|)), 'abs_analytic' (|a|) or 'sum' (|a|+|n|)")
    for name in ("relative_step", "promote", "progress", "second_look", "diagnose", "strict",
                 "repeat_backward"):
        given[name] = validate.flag(name, given[name])
    given["sample"] = validate.sample(given["sample"])
    if given["sample_seed"] is not None:  # None: a fresh random sample
        given["sample_seed"] = validate.seed("sample_seed", given["sample_seed"])
    if given["seed"] is not None:
        given["seed"] = validate.seed("seed", given["seed"])
    if given["reset"] is not None and not callable(given["reset"]):
        raise InputError(f"reset={given['reset']!r} is not callable; pass a function that "
                         "resets your random state, or use seed=.")
    _validate_speed_options(given)
    _validate_context(given["context"])
    return Plan(**given, scheme=scheme)


def _validate_speed_options(o: dict[str, Any]) -> None:
    """Checks of mode, batched_forward, batch_size, executor and workers (normalised in
    place: numpy integers become ints)."""
    validate.choice("mode", o["mode"], MODES, "'elementwise' (every entry, default) or "
                    "'directional' (one random direction per tensor, then localise)")
    batched, executor = o["batched_forward"], o["executor"]
    if batched is not None and not callable(batched):
        raise InputError(f"batched_forward={batched!r} is not callable; pass a "
                         "function of stacked params that returns a vector of losses.")
    if o["batch_size"] is not None:
        o["batch_size"] = validate.positive_int("batch_size", o["batch_size"], "64")
    if o["workers"] is not None:
        o["workers"] = validate.positive_int("workers", o["workers"], "2")
    if executor is not None and not hasattr(executor, "submit"):
        raise InputError(f"executor={executor!r} has no submit(); pass a "
                         "concurrent.futures.Executor such as ProcessPoolExecutor() or a "
                         "Dask client.get_executor().")
    if executor is not None and o["workers"] is not None:
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
    groups = context.get("groups")
    if groups is not None and not (
            isinstance(groups, (list, tuple)) and all(
                isinstance(g, (list, tuple)) and all(isinstance(n, str) for n in g)
                for g in groups)):
        raise InputError(f"context['groups']={groups!r} must be a list of lists of tensor "
                         "names that share an upstream gradient, ordered from the input to "
                         "the loss, e.g. [['U', 'W', 'b'], ['V', 'c']].")
