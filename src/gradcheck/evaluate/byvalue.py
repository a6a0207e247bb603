"""Pickle functions by value, so that lambdas and closures reach worker processes that were
not forked (spawn, forkserver) even without ``cloudpickle``.

Plain :mod:`pickle` stores a function as ``module.qualname`` and the worker imports it again:
that fails for a lambda, a closure, a function defined inside another one, or one defined in
the ``__main__`` of a script the worker does not run. Here such a function is stored as its
code object (:mod:`marshal`, valid between processes of the same Python), the globals its code
names, its defaults and the contents of its closure cells; modules are stored by name and
imported again. Functions that plain pickle can find by name still travel by reference.
The workers run the same interpreter as the check, which is what :mod:`marshal` requires.
"""

from __future__ import annotations

import builtins
import importlib
import io
import marshal
import pickle
import sys
import types
from typing import Any


def dumps(obj: Any, protocol: int = pickle.HIGHEST_PROTOCOL) -> bytes:
    """``pickle.dumps`` with lambdas, closures and ``__main__`` functions stored by value."""
    buffer = io.BytesIO()
    ByValuePickler(buffer, protocol).dump(obj)
    return buffer.getvalue()


class ByValuePickler(pickle.Pickler):
    """A pickler that stores functions by value when they cannot be found by name, and
    modules by name."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.ModuleType):
            return importlib.import_module, (obj.__name__,)
        if isinstance(obj, types.FunctionType) and not _importable(obj):
            return _make_function, _function_state(obj)
        return NotImplemented


def _importable(fn: types.FunctionType) -> bool:
    """Whether plain pickle would find ``fn`` again by ``module.qualname`` in a worker."""
    module = getattr(fn, "__module__", None)
    if module in (None, "__main__", "__mp_main__") or "<" in fn.__qualname__:
        return False
    found: Any = sys.modules.get(module)
    for part in fn.__qualname__.split("."):
        found = getattr(found, part, None)
    return found is fn


def _names(code: types.CodeType) -> set[str]:
    """Global names the code (and the code nested in it) may read."""
    out = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            out |= _names(const)
    return out


def _function_state(fn: types.FunctionType) -> tuple[Any, ...]:
    names = _names(fn.__code__)
    scope = {k: v for k, v in fn.__globals__.items() if k in names}
    cells = tuple(c.cell_contents for c in fn.__closure__ or ())
    return (marshal.dumps(fn.__code__), scope, fn.__name__, fn.__qualname__, fn.__defaults__,
            fn.__kwdefaults__, cells, fn.__dict__ or None)


def _make_function(code: bytes, scope: dict[str, Any], name: str, qualname: str,
                   defaults: tuple[Any, ...] | None, kwdefaults: dict[str, Any] | None,
                   cells: tuple[Any, ...], attributes: dict[str, Any] | None
                   ) -> types.FunctionType:
    """Rebuild a function stored by :func:`_function_state` (worker side)."""
    scope = dict(scope)
    scope.setdefault("__builtins__", builtins)
    closure = tuple(types.CellType(v) for v in cells) or None
    fn = types.FunctionType(marshal.loads(code), scope, name, defaults, closure)
    fn.__qualname__ = qualname
    fn.__kwdefaults__ = kwdefaults
    if attributes:
        fn.__dict__.update(attributes)
    return fn
