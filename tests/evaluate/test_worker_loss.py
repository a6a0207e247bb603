"""A Dask cluster that loses a worker mid-check still gives the serial report, bit for bit.

A worker process is killed with SIGKILL while the check runs (after a given number of
evaluations, counted by the forward itself in a file). Dask reschedules the lost tasks; the
replacement worker does not know the problem, answers MISSING, and receives the payload
(:mod:`gradcheck.evaluate.parallel`); every loss is still computed on a bit-identical copy of the
params, so the report equals the serial one.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import gradcheck as gc
from gradcheck.examples import rnn

distributed = pytest.importorskip("distributed")

try:  # Dask workers import modules afresh: send this module's functions by value
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
except ImportError:  # pragma: no cover - cloudpickle ships with dask
    pass

#: Seconds per forward: long enough that the kill lands while tasks are running.
PAUSE = 0.005


def counting(forward, log: Path):
    """``forward`` that appends one byte to ``log`` per call (an evaluation counter shared by
    all worker processes) and pauses ``PAUSE`` seconds."""
    def wrapped(params):
        with open(log, "ab") as fh:
            fh.write(b".")
        time.sleep(PAUSE)
        return forward(params)
    return wrapped


def same_report(a, b) -> None:
    assert a.status == b.status
    assert a.evaluations == b.evaluations
    assert [t.name for t in a.tensors] == [t.name for t in b.tensors]
    for s, p in zip(a.tensors, b.tensors):
        assert np.array_equal(s.flat_index, p.flat_index)
        assert np.array_equal(s.numeric, p.numeric)  # bit-identical losses
        assert np.array_equal(s.analytic, p.analytic)
        assert np.array_equal(s.status, p.status)


def killer(log: Path, after: int, pid: int, done: threading.Event, killed: dict) -> None:
    """Wait until the workers have done ``after`` evaluations, then SIGKILL ``pid``."""
    while not done.is_set():
        if log.exists() and log.stat().st_size >= after:
            killed["at"] = log.stat().st_size
            os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.005)


@pytest.mark.parametrize("mode", ["elementwise", "directional"])
def test_a_worker_killed_mid_check_leaves_the_report_identical(tmp_path, mode) -> None:
    pr = rnn.make_problem("bias_one_step", hidden=6, seq_len=4, batch=2, train_steps=2)
    options = {"mode": mode, "progress": False}
    serial = gc.check(pr.forward, pr.forward_backward, pr.params, **options)
    log = tmp_path / "evaluations"
    forward = counting(pr.forward, log)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        done, killed = threading.Event(), {}
        thread = threading.Thread(target=killer, args=(log, serial.evaluations // 3, victim, done,
                                                          killed))
        thread.start()
        try:
            report = gc.check(forward, pr.forward_backward, pr.params,
                              executor=client.get_executor(), **options)
        finally:
            done.set()
            thread.join()
        total = log.stat().st_size
        survivors = client.run(os.getpid)
    assert "at" in killed, "the worker was not killed before the check ended"
    assert killed["at"] < total          # the check went on after the kill
    assert victim not in survivors.values()
    same_report(serial, report)
    assert report.failing_tensors == ["b"]
