"""gradcheck at defaults on the whole suite (zoo, RNN bug variants, reference layers):
no false alarm, no missed bug, no inconclusive verdict on a correct model, and every bug's
tensors named exactly. The lecture's plain algorithm, for contrast, raises false alarms."""

from __future__ import annotations

import pytest

from gradcheck.examples import suite as zoo_suite


@pytest.fixture(scope="module")
def suite():
    return zoo_suite


@pytest.fixture(scope="module")
def rows(suite):
    cases = suite.all_cases()
    assert len(cases) >= 40
    return suite.run(cases, plain=False)


def test_suite_is_large_and_mixed(suite, rows) -> None:
    s = suite.summary(rows)
    assert s["models"] >= 100 and s["correct"] >= 40 and s["buggy"] >= 40
    assert {r.case.group for r in rows} == {"zoo", "rnn", "layers"}


def test_no_false_alarms(rows) -> None:
    assert [r.case.name for r in rows if not r.case.buggy and r.status == "fail"] == []


def test_no_inconclusive_on_correct_models(rows) -> None:
    assert [r.case.name for r in rows if not r.case.buggy and r.status != "pass"] == []


def test_no_missed_bugs(rows) -> None:
    assert [r.case.name for r in rows if r.case.buggy and r.status != "fail"] == []


def test_bug_tensors_named_exactly(rows) -> None:
    wrong = [(r.case.name, sorted(r.tensors), sorted(r.case.bad)) for r in rows
             if r.case.buggy and r.tensors != set(r.case.bad)]
    assert wrong == []


def test_kink_models_pass_with_kink_entries(rows) -> None:
    kinky = {r.case.name for r in rows if not r.case.buggy and r.kinks}
    assert {"relu_kinks", "leaky_relu_kinks", "maxpool_ties", "hinge_margin"} <= kinky


def test_plain_algorithm_raises_false_alarms_where_gradcheck_does_not(suite) -> None:
    from gradcheck.examples import zoo

    names = ["relu_kinks", "maxpool_ties", "dropout_mlp", "large_loss", "float32_mlp"]
    cases = {c.name: c for c in suite.zoo_cases() if c.name in names}
    for name in names:
        alarm, _ = suite.plain_alarm(cases[name])
        assert alarm, name
        assert not zoo.get(name).buggy


@pytest.mark.parametrize("options", [{"h": 1e-3}, {"method": "forward"},
                                     {"relative_step": True}])
def test_other_settings_stay_honest(suite, options) -> None:
    rows = suite.run(suite.all_cases(), plain=False, **options)
    s = suite.summary(rows)
    assert (s["gc_false_alarms"], s["gc_missed"], s["gc_inconclusive_correct"]) == (0, 0, 0)
