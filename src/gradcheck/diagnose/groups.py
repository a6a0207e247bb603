"""What the set of failing tensors says about where the bug is, and the shape of an error that
no pattern explains."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from gradcheck.diagnose.evidence import Diagnosis, _index_list, _join, _slice_word

#: Confidence of a conclusion drawn from which tensors of a group fail: it rests on the
#: verdicts (each a claim with error bars), not on a fitted pattern.
GROUP_CONFIDENCE = 0.75


def _names(names: Sequence[str]) -> str:
    return _join(list(names))


def _verb(names: Sequence[str], one: str, many: str) -> str:
    return one if len(names) == 1 else many


def diagnose_groups(groups: Sequence[Sequence[str]], failed: Mapping[str, bool],
                    passed: Mapping[str, bool]) -> dict[str, Diagnosis]:
    """Locate a bug from which tensors of each group fail.

    Parameters
    ----------
    groups : sequence of sequences of str
        Tensors whose gradients are built from one shared upstream gradient (the weights and
        bias of one layer, or every input of a layer check), ordered from the input side to
        the loss. Names that are not tensors of the check are ignored.
    failed, passed : mapping of str to bool
        Per tensor: the check failed it; the check passed it (checked, nothing wrong). A
        tensor neither failed nor passed (inconclusive, skipped) decides nothing.

    Returns
    -------
    dict of str to Diagnosis
        For failing tensors of a group: ``"shared"`` when two or more tensors of the group
        fail and the rest passed (their shared upstream gradient is the likely culprit; if a
        group nearer the loss fails too, the error probably flows back from there), and
        ``"own_formula"`` when one tensor fails and the rest of its group passed (its own
        line is wrong). Confidence :data:`GROUP_CONFIDENCE`.
    """
    out: dict[str, Diagnosis] = {}
    kept = [[n for n in g if n in failed] for g in groups]
    kept = [g for g in kept if len(g) >= 2]
    for gi, group in enumerate(kept):
        bad = [n for n in group if failed[n]]
        good = [n for n in group if not failed[n] and passed.get(n, False)]
        if not bad or len(bad) + len(good) != len(group):
            continue
        later_bad = [n for g in kept[gi + 1:] for n in g if failed[n]]
        if len(bad) >= 2 and later_bad:
            text = (f"The gradients of {_names(bad)} are wrong, and so "
                    f"{_verb(later_bad, 'is', 'are')} {_names(later_bad)}'s nearer the loss: "
                    f"fix {_verb(later_bad, 'that', 'those')} first, the error probably flows "
                    f"back from there into {_names(bad)}.")
            kind = "shared"
        elif len(bad) >= 2 and not good:
            after = [n for g in kept[gi + 1:] for n in g if passed.get(n, False)]
            right = f" while those of {_names(after)} are right" if after else ""
            if len(kept) > 1 and gi == len(kept) - 1:
                what = "the gradient of the loss itself, e.g. softmax minus one-hot or its mean"
            elif len(kept) == 1:
                what = ("e.g. the gradient at the pre-activation: an activation's derivative, "
                        "or an incoming gradient dropped")
            else:
                what = ("what flows into them, e.g. a gradient carried over from the next time "
                        "step or an activation's derivative")
            text = (f"The gradients of {_names(bad)} are all wrong{right}: they are built from "
                    f"one shared upstream gradient, so the mistake is most likely in it "
                    f"({what}), not in their own formulas.")
            kind = "shared"
        elif len(bad) >= 2:
            text = (f"The gradients of {_names(bad)} are wrong while {_names(good)}'s "
                    f"{_verb(good, 'is', 'are')} right: the mistake is most likely in a "
                    f"gradient the wrong ones share and {_names(good)} "
                    f"{_verb(good, 'does', 'do')} not (e.g. an activation's or a gate's "
                    f"derivative), not in each formula.")
            kind = "shared"
        else:
            text = (f"The gradient of {bad[0]} is wrong while {_names(good)}, built from the "
                    f"same upstream gradient, {_verb(good, 'is', 'are')} right: the mistake is "
                    f"in the line that computes the gradient of {bad[0]} itself (e.g. it keeps "
                    f"one term of a sum, = instead of += in a loop, sums over the wrong axis, "
                    f"or multiplies by the wrong or untransposed factor).")
            kind = "own_formula"
        for n in bad:
            out[n] = Diagnosis(n, kind, text, GROUP_CONFIDENCE)
    return out


def _where(bad: np.ndarray, layout: bool) -> str:
    """How many entries are wrong and, with the tensor's layout, which slices hold them."""
    k, size = int(bad.sum()), bad.size
    head = f"{k} of {size} entries are wrong"
    if not layout or bad.ndim == 0:
        return head
    if bad.ndim == 1:
        return f"{head} (entries {_index_list(np.flatnonzero(bad))})" if k < size else head
    parts = []
    for ax in range(bad.ndim):
        hit = np.moveaxis(bad, ax, 0).reshape(bad.shape[ax], -1).any(axis=1)
        if hit.sum() < hit.size:
            idx = np.flatnonzero(hit)
            if bad.ndim == 2:
                parts.append(f"{_slice_word(ax, 2, plural=len(idx) > 1)} {_index_list(idx)}")
            else:
                parts.append(f"{'indices' if len(idx) > 1 else 'index'} {_index_list(idx)} "
                             f"along axis {ax}")
    if not parts:
        return f"{head}, spread over every {'row and column' if bad.ndim == 2 else 'axis'}"
    return f"{head}, only in {_join(parts)}"


def describe_error(name: str, analytic: np.ndarray, numeric: np.ndarray, bad: np.ndarray,
                   layout: bool = True) -> Diagnosis:
    """Say that no known pattern fits, and show the error's shape: where, sign, magnitude.

    Parameters
    ----------
    name : str
        Tensor name used in the sentence.
    analytic, numeric : numpy.ndarray
        ``A`` and ``N``, same shape.
    bad : numpy.ndarray of bool
        The failing entries.
    layout : bool, default True
        Whether the arrays have the tensor's layout (then the rows, columns or indices that
        hold the errors are named); False for a flat sample of entries.

    Returns
    -------
    Diagnosis
        ``kind="unknown"``, confidence 0: how many entries fail and where, whether the
        analytic values are mostly too large or too small in magnitude (median ``|A|/|N|``),
        how often the signs agree, and the range of the relative errors.
    """
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numeric, dtype=np.float64)
    bad = np.asarray(bad, dtype=bool) & np.isfinite(a) & np.isfinite(n)
    details = []
    if bad.any():
        aa, nn = np.abs(a[bad]), np.abs(n[bad])
        live = nn > 1e-12 * max(float(aa.max()), 1e-300)
        if not live.any():
            details.append("where the numerical gradient is zero (the loss does not depend on "
                           "them: a gradient the forward pass never uses, or two tensors' "
                           "gradients mixed up)")
        if live.any():
            ratio = float(np.median(aa[live] / nn[live]))
            size = ("mostly too large" if ratio > 1.05 else "mostly too small"
                    if ratio < 0.95 else "about the right size")
            details.append(f"{size} (median |analytic|/|numeric| {ratio:.2g})")
        both = (aa > 0) & live
        if both.any():
            same = float(np.mean(np.sign(a[bad][both]) == np.sign(n[bad][both])))
            details.append("with the same sign everywhere" if same == 1.0 else
                           "with the opposite sign everywhere" if same == 0.0 else
                           f"with the same sign at {same:.0%} of them")
        rel = np.abs(a[bad] - n[bad]) / np.maximum(np.maximum(aa, nn), 1e-300)
        details.append(f"relative errors {rel.min():.2g} to {rel.max():.2g}")
    shape = ", ".join([_where(bad, layout), *details])
    sentence = (f"No known bug pattern fits the gradient of {name}: {shape}; compare its "
                f"backward pass with the forward pass line by line.")
    return Diagnosis(name, "unknown", sentence, 0.0)
