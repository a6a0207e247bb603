"""Load the TARGET of ``gradcheck check`` / ``gradcheck sweep``: ``rnn`` or ``module:factory``.

``factory()`` returns ``(forward, forward_backward, params)``. Two kinds of error, two exit
codes: a target that names nothing (no such module, no such factory, a malformed target, a
factory that is not callable) is the command line's fault — :class:`UsageError`, exit 3; a
module or factory that raises (on import, a SyntaxError, a missing dependency) or returns
something unusable is the user's code — :class:`UserCodeError`, exit 4, naming the file and
line. Each message is one sentence.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from typing import Any

from gradcheck.cli.options import UsageError
from gradcheck.errors import GradcheckError
from gradcheck.examples import rnn

#: How a target should look, for the messages.
EXAMPLE = "'mymodel:problem' where problem() returns (forward, forward_backward, params)"


class UserCodeError(GradcheckError):
    """The user's module or factory raised, or returned something unusable (exit 4)."""


def one_line(text: object) -> str:
    """``text`` with its whitespace (newlines too) collapsed: an error is one line."""
    return " ".join(str(text).split())


def where(exc: BaseException) -> str:
    """``file.py:line`` of the innermost frame of ``exc``'s traceback, or ``""``."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    return f"{Path(last.filename).name}:{last.lineno}"


def raised(what: str, exc: BaseException) -> str:
    """``what raised TypeName: message (file.py:12)``."""
    at = where(exc)
    return one_line(f"{what} raised {type(exc).__name__}: {exc}" + (f" ({at})" if at else ""))


def split_target(target: str) -> tuple[str, str]:
    """``("module", "factory")`` of ``module:factory``, or a UsageError that shows the form."""
    if ":" not in target:
        raise UsageError(f"target {target!r} is neither 'rnn' nor module:factory; write e.g. "
                         f"{EXAMPLE}.")
    module_name, attr = target.split(":", 1)
    if not module_name:
        raise UsageError(f"target {target!r} names no module before the colon; write e.g. "
                         f"{EXAMPLE}.")
    if not attr:
        raise UsageError(f"target {target!r} names no factory after the colon; write e.g. "
                         f"{EXAMPLE}.")
    return module_name, attr


def import_module(module_name: str) -> Any:
    """Import the user's module from the current directory or the installed packages."""
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        spec = None
    except Exception as exc:  # noqa: BLE001 - a parent package raised on import
        raise UserCodeError(raised(f"importing the package of {module_name!r}", exc) +
                            "; fix it and run again.") from exc
    if spec is None:
        raise UsageError(f"no module named {module_name!r} in the current directory or the "
                         f"installed packages; run from the directory holding "
                         f"{module_name.replace('.', '/')}.py or install it.")
    try:
        return importlib.import_module(module_name)
    except SyntaxError as exc:
        raise UserCodeError(one_line(f"{Path(exc.filename or module_name).name}, line "
                                     f"{exc.lineno}: SyntaxError: {exc.msg}; fix the module "
                                     "and run again.")) from exc
    except ModuleNotFoundError as exc:
        missing = exc.name or str(exc)
        raise UserCodeError(f"importing {module_name!r} failed because it imports {missing!r}, "
                            f"which is not installed ({where(exc)}); install it or fix the "
                            "import.") from exc
    except Exception as exc:  # noqa: BLE001 - anything the user's module raises
        raise UserCodeError(raised(f"importing {module_name!r}", exc) +
                            "; fix the module and run again.") from exc


def load_factory(target: str) -> Any:
    """The callable ``factory`` of ``module:factory``."""
    module_name, attr = split_target(target)
    module = import_module(module_name)
    if not hasattr(module, attr):
        funcs = sorted(n for n, v in vars(module).items()
                       if callable(v) and not n.startswith("_")
                       and getattr(v, "__module__", None) == module.__name__)
        hint = f" (its functions: {', '.join(funcs[:8])})" if funcs else ""
        raise UsageError(f"module {module_name!r} has no {attr!r}{hint}; write "
                         "module:factory with a function that returns (forward, "
                         "forward_backward, params).")
    factory = getattr(module, attr)
    if not callable(factory):
        raise UsageError(f"{target!r} is a {type(factory).__name__}, not callable; point at a "
                         "function that returns (forward, forward_backward, params).")
    return factory


def call_factory(target: str, factory: Any) -> tuple[Any, Any, Any, Any]:
    """``factory()``, checked to be ``(forward, forward_backward, params)`` or, with a batched
    forward, ``(forward, forward_backward, params, batched_forward)``; the fourth item is
    ``None`` when not given."""
    try:
        out = factory()
    except Exception as exc:  # noqa: BLE001 - anything the user's factory raises
        raise UserCodeError(raised(f"{target}()", exc) + "; fix the factory and run "
                            "again.") from exc
    if not (isinstance(out, (tuple, list)) and len(out) in (3, 4)):
        got = (f"a {type(out).__name__} of length {len(out)}"
               if isinstance(out, (tuple, list)) else f"a {type(out).__name__}")
        raise UserCodeError(f"{target}() returned {got}; it must return (forward, "
                            "forward_backward, params).")
    forward, forward_backward, params = out[:3]
    batched = out[3] if len(out) == 4 else None
    for name, fn in (("forward", forward), ("forward_backward", forward_backward),
                     ("batched_forward", batched if batched is not None else print)):
        if not callable(fn):
            raise UserCodeError(f"{target}() returned a {type(fn).__name__} as {name}; it must "
                                "return (forward, forward_backward, params) with two "
                                "functions.")
    return forward, forward_backward, params, batched


def load_target(target: str, bug: str | None = None, with_batched: bool = False
                ) -> tuple[Any, ...]:
    """``(forward, forward_backward, params)`` of ``rnn`` or ``module:factory`` (and the
    batched forward, or ``None``, as a fourth item with ``with_batched``)."""
    if target == "rnn":
        if bug is not None and bug not in rnn.BUGS:
            raise UsageError(f"unknown bug {bug!r}; run 'gradcheck demo rnn --list-bugs' to see "
                             "the names.")
        p = rnn.make_problem(bug)
        found = (p.forward, p.forward_backward, p.params, p.batched_forward)
    elif bug is not None:
        raise UsageError("--bug applies to the built-in 'rnn' target only.")
    else:
        found = call_factory(target, load_factory(target))
    return found if with_batched else found[:3]
