"""The diagnosis wired into the check: failing tensors get the right kind of likely bug, and
nothing is claimed with confidence about tensors (or models) that are correct."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.cli import main
from gradcheck.examples import rnn
from gradcheck.examples.layers import LAYERS, check_reference_layer

B, T = 4, 10

#: bug → {tensor: (kind, factor or None)} where the diagnosis must name the pattern.
RNN_EXPECTED = {
    "sign": {"V": ("sign", -1.0)},
    "batch_scale": {"V": ("scale", float(B)), "c": ("scale", float(B))},
    "transpose": {"W": ("transpose", None)},
}

#: (layer, bug) → (tensor, kind, factor or None); N is the layer's batch size.
LAYER_EXPECTED = {
    ("affine", "dw_transposed"): ("w", "transpose", None),
    ("affine", "dw_divided_by_n"): ("w", "scale", 1 / 4),
    ("layernorm", "dbeta_mean"): ("beta", "scale", 1 / 5),
    ("softmax_loss", "no_divide_by_n"): ("x", "scale", 5.0),
    ("svm_loss", "no_divide_by_n"): ("x", "scale", 5.0),
    ("dropout", "missing_scale"): ("x", "scale", 0.6),
    ("embedding", "assignment_instead_of_accumulation"): ("W", "repeated_rows", None),
    ("embedding", "fancy_index_iadd"): ("W", "repeated_rows", None),
    ("leaky_relu", "negative_slope_zero"): ("x", "zero", None),
}


def _check_rnn(bug, **options):
    problem = rnn.make_problem(bug, seq_len=T, batch=B)
    assert problem.context["batch_size"] == B and problem.context["seq_len"] == T
    return gc.check(problem.forward, problem.forward_backward, problem.params,
                    context=problem.context, **options)


def _assert_kind(t, kind: str, factor: float | None) -> None:
    assert t.likely_bug is not None, f"{t.name}: no diagnosis"
    assert t.likely_bug.kind == kind, t.diagnosis
    assert t.likely_bug.confidence >= 0.7
    assert t.diagnosis == t.likely_bug.sentence and t.name in t.diagnosis
    if factor is not None:
        assert t.likely_bug.factor == pytest.approx(factor, rel=1e-3)


@pytest.mark.parametrize("bug", sorted(rnn.BUGS))
def test_rnn_bugs_get_the_right_diagnosis_and_correct_tensors_none(bug: str) -> None:
    report = _check_rnn(bug)
    expected = RNN_EXPECTED.get(bug, {})
    for t in report.tensors:
        if t.name in expected:
            _assert_kind(t, *expected[t.name])
        if t.name not in rnn.BUGS[bug].affects:
            assert t.diagnosis is None and t.likely_bug is None, t.diagnosis


def test_correct_rnn_has_no_diagnosis() -> None:
    report = _check_rnn(None)
    assert report.status == "pass"
    assert all(t.diagnosis is None for t in report.tensors)


@pytest.mark.parametrize(("layer", "bug"), sorted(LAYER_EXPECTED))
def test_layer_bugs_get_the_right_diagnosis(layer: str, bug: str) -> None:
    name, kind, factor = LAYER_EXPECTED[(layer, bug)]
    report = check_reference_layer(layer, bug)
    _assert_kind(report.tensor(name), kind, factor)


@pytest.mark.parametrize(("layer", "bug"),
                         [(n, b) for n in sorted(LAYERS) for b in sorted(LAYERS[n].bugs)])
def test_layer_bugs_never_blame_a_correct_input(layer: str, bug: str) -> None:
    report = check_reference_layer(layer, bug)
    blamed = {t.name for t in report.tensors if t.diagnosis}
    assert blamed <= set(LAYERS[layer].bugs[bug].affects)


def test_zoo_diagnoses_only_blame_bad_tensors() -> None:
    zoo = pytest.importorskip("gradcheck.examples.zoo")
    blamed_wrongly = []
    for m in zoo.MODELS:
        report = gc.check(m.forward, m.forward_backward, m.params, seed=m.needs_seed)
        for t in report.tensors:
            if t.diagnosis and t.name not in m.bad_tensors:
                blamed_wrongly.append((m.name, t.name, t.diagnosis))
    assert blamed_wrongly == []


def test_sampled_tensors_still_get_scalar_patterns() -> None:
    report = _check_rnn("sign", sample=12)
    _assert_kind(report.tensor("V"), "sign", -1.0)


def test_diagnose_off_and_context_errors() -> None:
    assert all(t.diagnosis is None for t in _check_rnn("sign", diagnose=False).tensors)
    p = np.ones(3)
    with pytest.raises(gc.InputError, match="unknown key"):
        gc.check(lambda x: float(x.sum()), np.ones_like, p, context={"batch": 3})


def test_json_and_text_carry_the_diagnosis(tmp_path, capsys) -> None:
    data = _check_rnn("batch_scale").to_dict()
    v = next(t for t in data["tensors"] if t["name"] == "V")
    assert v["likely_bug"]["kind"] == "scale" and v["likely_bug"]["factor"] == pytest.approx(B)
    json.dumps(data)
    assert main(["demo", "rnn", "--bug", "sign"]) == 1
    out = capsys.readouterr().out
    assert "Likely bugs:" in out and "V: The gradient of V" in out and "-1" in out


def _assert_named_rightly(report, bug) -> None:
    """Every sentence on a tensor the bug breaks has an expected kind (or says no pattern
    fits), at least one names the bug, and no tensor the bug leaves correct gets one."""
    said = []
    for t in report.tensors:
        if t.name not in bug.affects:
            assert t.diagnosis is None and t.likely_bug is None, t.diagnosis
            continue
        if t.likely_bug is None or t.likely_bug.kind == "unknown":
            continue
        assert t.likely_bug.kind in bug.expected, (t.name, t.diagnosis)
        assert t.likely_bug.confidence >= 0.7 and t.name in t.diagnosis
        said.append(t.name)
    assert said, f"{bug.name}: no tensor it breaks got a sentence"


@pytest.mark.parametrize("bug", sorted(rnn.BUGS))
def test_every_rnn_bug_is_named_rightly(bug: str) -> None:
    assert rnn.BUGS[bug].expected
    _assert_named_rightly(_check_rnn(bug), rnn.BUGS[bug])


@pytest.mark.parametrize(("layer", "bug"),
                         [(n, b) for n in sorted(LAYERS) for b in sorted(LAYERS[n].bugs)])
def test_every_layer_bug_is_named_rightly(layer: str, bug: str) -> None:
    record = LAYERS[layer].bugs[bug]
    assert record.expected
    _assert_named_rightly(check_reference_layer(layer, bug), record)


@pytest.mark.parametrize(("layer", "bug"), [("relu", "pass_through"),
                                            ("embedding", "fancy_index_iadd"),
                                            ("affine", "db_first_row"),
                                            ("softmax_loss", "missing_one_hot")])
def test_directional_localisation_is_diagnosed(layer: str, bug: str) -> None:
    report = check_reference_layer(layer, bug, mode="directional", progress=False)
    _assert_named_rightly(report, LAYERS[layer].bugs[bug])
    if (layer, bug) in (("relu", "pass_through"), ("softmax_loss", "missing_one_hot")):
        t = report.failing_tensors[0]
        located = report.tensor(t)
        assert not located.directional.sampled and located.checked < located.size


def test_directional_report_has_no_nan_columns() -> None:
    report = _check_rnn("sign", mode="directional", progress=False)
    text = str(report)
    table = text.split("Directional tests")[0]
    assert "nan" not in table and "direction" in table
    u = next(t for t in report.to_dict()["tensors"] if t["name"] == "U")
    assert u["max_error"] is None and u["checked"] == 0


def test_no_pattern_says_so_with_the_shape_of_the_error() -> None:
    def fb(p):
        x = p["x"]
        g = 2 * x
        g[1] += 0.3 * np.sin(7 * x[1])           # a wrong row, no known pattern
        return {"x": g, "y": 3 * p["y"] ** 2}

    params = {"x": np.linspace(0.2, 1.7, 12).reshape(3, 4), "y": np.ones(3)}
    report = gc.check(lambda p: float(np.sum(p["x"] ** 2) + np.sum(p["y"] ** 3)), fb, params)
    x = report.tensor("x")
    assert x.likely_bug is not None and x.likely_bug.kind == "unknown"
    assert x.likely_bug.confidence == 0.0
    assert "No known bug pattern" in x.diagnosis and "only in row 1" in x.diagnosis
    assert report.tensor("y").diagnosis is None


def test_context_groups_are_validated() -> None:
    with pytest.raises(gc.InputError, match="groups"):
        gc.check(lambda x: float(x.sum()), np.ones_like, np.ones(3), context={"groups": "x"})


def test_layer_check_passes_groups_and_bias_terms() -> None:
    from gradcheck.layer_check import _layer_context

    dout = np.random.default_rng(0).normal(size=(2, 3, 4, 4))          # (N, F, H', W')
    params = {"x": np.zeros((2, 2, 5, 5)), "w": np.zeros((3, 2, 3, 3)), "b": np.zeros(3)}
    ctx = _layer_context({"batch_size": 2}, ["x", "w", "b"], params, dout)
    assert ctx["groups"] == [["x", "w", "b"]] and set(ctx["terms"]) == {"b"}
    assert ctx["terms"]["b"].shape == (32, 3)
    np.testing.assert_allclose(ctx["terms"]["b"].sum(axis=0), dout.sum(axis=(0, 2, 3)))
    given = _layer_context({"groups": [], "terms": {}}, ["x", "w", "b"], params, dout)
    assert given["groups"] == [] and given["terms"] == {}
    affine = _layer_context({}, ["x", "w", "b"], {"x": np.zeros((4, 6)), "w": np.zeros((6, 5)),
                                                  "b": np.zeros(5)}, np.ones((4, 5)))
    assert affine["terms"]["b"].shape == (4, 5)


@pytest.mark.parametrize(("seq_len", "batch"), [(5, 2), (10, 4)])
def test_rnn_demo_context_follows_the_problem(seq_len: int, batch: int) -> None:
    problem = rnn.make_problem("first_step_h0", seq_len=seq_len, batch=batch)
    assert problem.context["seq_len"] == seq_len and problem.context["batch_size"] == batch
    report = gc.check(problem.forward, problem.forward_backward, problem.params,
                      context=problem.context, progress=False)
    _assert_named_rightly(report, rnn.BUGS["first_step_h0"])


def test_terms_that_do_not_fit_are_named() -> None:
    def fb(p):
        return {"b": p["b"]}                 # half the true gradient: fails

    with pytest.raises(gc.InputError, match="terms"):
        gc.check(lambda p: float(np.sum(p["b"] ** 2)), fb, {"b": np.arange(1.0, 4.0)},
                 context={"terms": {"b": np.ones((2, 5))}}, progress=False)


def test_a_sample_is_diagnosed_without_positions() -> None:
    """Entries of a sample are not in the tensor's layout: no rows, edges or steps named."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 20))

    def fb(p):
        g = 2 * p["x"]
        g[7] = 0.0                           # one row never written
        return {"x": g}

    report = gc.check(lambda p: float(np.sum(p["x"] ** 2)), fb, {"x": x}, sample=100,
                      progress=False)
    t = report.tensor("x")
    assert t.failed and t.likely_bug is not None
    assert re.search(r"at \d+ entries", t.diagnosis), t.diagnosis      # counted, not located
    assert "row" not in t.diagnosis and "step" not in t.diagnosis
