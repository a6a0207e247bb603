"""The state of one run, fixed before a mode starts: what every mode reads, nobody writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.estimate.schemes import Scheme
from gradcheck.evaluate.base import Evaluator
from gradcheck.options import Plan
from gradcheck.params import tree as trees
from gradcheck.params.workspace import Workspace


@dataclass(frozen=True)
class Run:
    """Everything a mode needs to check the tensors.

    ``plan`` is what the user asked for; the other fields are what the run decided before
    handing over to the mode: the scheme and step actually used (``method="auto"`` may have
    chosen the complex step), the model's gradient scale, the base loss and its noise, and the
    evaluators (``numeric`` evaluates the scheme's points — complex ones for the complex step;
    ``rescue`` re-estimates inconclusive entries with the complex step, or is ``None``).
    """

    plan: Plan
    leaves: list[trees.Leaf]
    work: Workspace
    grads: list[np.ndarray]         # analytic gradients, times plan.loss_scale
    evaluator: Evaluator            # real-valued: base losses and directions
    numeric: Evaluator              # where the scheme's points are evaluated
    rescue: Evaluator | None
    scheme: Scheme
    h: float | str
    grad_scale: float
    f0: float
    noise: float
    progress: Any = None
    #: the loss's measured noise (gradcheck.estimate.ecnoise.Noise), or None
    measured: Any = None
    #: ``meter()`` measures the loss's noise on demand (once; ``measured`` when known)
    meter: Any = None

    @property
    def nominal_h(self) -> float:
        """The step taken, or the scheme's default when ``h="auto"``."""
        if self.h in (None, "auto"):
            return self.scheme.default_h
        return float(self.h)  # type: ignore[arg-type]

    def decisions(self) -> dict[str, Any]:
        """What the run decided, for the report (beside the options asked for)."""
        h = self.h if self.h is not None else (
            "from the measured noise" if self.measured is not None and self.measured.measured
            else "from the loss's noise")
        return {"scheme": self.scheme.name, "h": h, "grad_scale": self.grad_scale,
                "complex_rescue": self.rescue is not None,
                "workspace": "float64 copies" if self.work.promoted else "your arrays",
                "noise": None if self.measured is None else self.measured.sigma,
                "noise_measured": self.measured is not None and self.measured.measured,
                "noise_evaluations": 0 if self.measured is None else self.measured.evaluations}
