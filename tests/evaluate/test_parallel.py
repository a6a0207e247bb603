"""executor= / workers=: the same report as the serial check, computed on other processes."""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
from problems import cubic, cubic_grad

import gradcheck as gc
from gradcheck.errors import ForwardError, InputError
from gradcheck.evaluate import parallel
from gradcheck.evaluate.parallel import ExecutorEvaluator, WorkerProblem, chunks, start_method
from gradcheck.examples import rnn

try:  # workers started by Dask import modules afresh: send this test module's functions by value
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(autouse=True)
def always_use_the_pool(monkeypatch) -> None:
    """These checks are short: without this they would run serially (and say so)."""
    monkeypatch.setattr(parallel, "SERIAL_BELOW", 0.0)


def same_report(a, b) -> None:
    assert a.status == b.status
    assert a.evaluations == b.evaluations
    for s, p in zip(a.tensors, b.tensors):
        assert np.array_equal(s.flat_index, p.flat_index)
        assert np.array_equal(s.numeric, p.numeric)  # bit-identical losses
        assert np.array_equal(s.status, p.status)


def problem():
    return rnn.make_problem("bias_one_step", hidden=6, seq_len=4, batch=2, train_steps=2)


def test_two_workers_give_the_serial_report() -> None:
    pr = problem()
    serial = gc.check(pr.forward, pr.forward_backward, pr.params)
    parallel = gc.check(pr.forward, pr.forward_backward, pr.params, workers=2)
    same_report(serial, parallel)
    assert parallel.failing_tensors == ["b"]


def test_directional_mode_on_workers_gives_the_serial_report() -> None:
    pr = rnn.make_problem("sign", hidden=8)
    serial = gc.check(pr.forward, pr.forward_backward, pr.params, mode="directional")
    parallel = gc.check(pr.forward, pr.forward_backward, pr.params, mode="directional",
                        workers=2)
    same_report(serial, parallel)


def fragile(p):
    if p["x"][3] > 0.5:
        raise ValueError("x[3] left the domain")
    return cubic(p)


def test_a_workers_exception_is_the_forwards_error_naming_the_entry() -> None:
    x = {"x": np.full(8, 0.5)}
    with pytest.raises(ForwardError, match=r"ValueError: x\[3\] left the domain when x\[3\]"):
        gc.check(fragile, cubic_grad, x, workers=2)
    assert np.array_equal(x["x"], np.full(8, 0.5))


def test_user_executor_gets_the_problem_about_once_per_worker() -> None:
    pr = problem()
    serial = gc.check(pr.forward, pr.forward_backward, pr.params)
    with ThreadPoolExecutor(2) as pool:  # one process: one install is enough
        ev = ExecutorEvaluator(pool, WorkerProblem(pr.forward, pr.params, list(pr.params), None,
                                                     None, False), list(pr.params.values()),
                               workers=2)
        idx = np.arange(pr.params["W"].size)
        values = pr.params["W"].reshape(-1)[:, None] + np.array([[1e-5, -1e-5]])
        ev.entries(1, idx, values)
        ev.entries(1, idx, values)
        assert ev.shipped <= 4  # a scheduling race may ship twice per thread, never per task
        report = gc.check(pr.forward, pr.forward_backward, pr.params, executor=pool)
    same_report(serial, report)
    with ProcessPoolExecutor(2, mp_context=start_method()) as pool:
        ev = ExecutorEvaluator(pool, WorkerProblem(pr.forward, pr.params, list(pr.params), None,
                                                     None, False), list(pr.params.values()),
                               workers=2)
        for _ in range(3):
            ev.entries(1, idx, values)
        assert ev.shipped <= 8  # ~one per worker (races under load), never one per task (24)


def dropout_forward(p):
    mask = np.random.rand(p["x"].size) > 0.3
    return float(np.sum(np.sin(p["x"]) * mask))


def dropout_grad(p):
    mask = np.random.rand(p["x"].size) > 0.3
    return {"x": np.cos(p["x"]) * mask}


def test_seed_is_applied_in_the_workers() -> None:
    x = {"x": np.linspace(-2, 2, 30)}
    serial = gc.check(dropout_forward, dropout_grad, x, seed=3)
    parallel = gc.check(dropout_forward, dropout_grad, x, seed=3, workers=2)
    assert serial.status == "pass"
    same_report(serial, parallel)


def test_closures_travel_to_workers() -> None:
    scale = 2.5
    report = gc.check(lambda p: float(scale * np.sum(p["x"] ** 2)),
                      lambda p: {"x": 2 * scale * p["x"]}, {"x": np.arange(5.0)}, workers=2)
    assert report.status == "pass"


def test_chunks_cover_everything_evenly() -> None:
    parts = chunks(103, 2)
    assert sum(s.stop - s.start for s in parts) == 103 and len(parts) == 8
    assert chunks(0, 4) == [] and len(chunks(3, 4)) == 3


def test_bad_parallel_options() -> None:
    x = {"x": np.arange(3.0)}
    with pytest.raises(InputError, match="workers"):
        gc.check(cubic, cubic_grad, x, workers=0)
    with pytest.raises(InputError, match="either executor= or workers="):
        gc.check(cubic, cubic_grad, x, workers=2, executor=ThreadPoolExecutor(1))
    with pytest.raises(InputError, match="submit"):
        gc.check(cubic, cubic_grad, x, executor="dask")


def test_dask_local_cluster_gives_the_serial_report() -> None:
    distributed = pytest.importorskip("distributed")
    pr = problem()
    serial = gc.check(pr.forward, pr.forward_backward, pr.params)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        report = gc.check(pr.forward, pr.forward_backward, pr.params,
                          executor=client.get_executor())
        directional = gc.check(pr.forward, pr.forward_backward, pr.params,
                               mode="directional", executor=client.get_executor())
    same_report(serial, report)
    assert directional.failing_tensors == ["b"]


def test_cli_workers_and_batched(capsys) -> None:
    from gradcheck.cli import main

    code = main(["demo", "rnn", "--bug", "bias_one_step", "--hidden", "6", "--seq-len", "4",
                 "--workers", "2", "--batched", "--no-progress"])
    assert code == 1 and "b[" in capsys.readouterr().out
    assert main(["demo", "rnn", "--workers", "0"]) == 3
