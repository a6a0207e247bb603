"""The one way gradcheck imports an optional extra (torch, jax, matplotlib, rich, cloudpickle).

The core needs numpy alone; everything else is imported lazily, when a feature that needs it is
used, and a missing extra is named with the command that installs it.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

#: The pip extra that installs each optional top-level package.
EXTRAS = {"torch": "torch", "jax": "jax", "matplotlib": "plot", "rich": "rich",
          "dask": "dask", "distributed": "dask", "cloudpickle": "dask", "tqdm": "rich"}


def optional_import(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise ImportError saying what needs it and how to install it.

    ``purpose`` completes the sentence "... needs <package>", e.g. ``"report.plot()"``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        extra = EXTRAS.get(package, package)
        raise ImportError(f"{purpose} needs {package}; install it with "
                          f"pip install 'gradcheck[{extra}]'.") from exc


def available(module: str) -> bool:
    """True when ``module`` can be imported (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
