"""Spread the evaluations of a check over a ``concurrent.futures.Executor``.

Any executor works: a ``ProcessPoolExecutor`` (``workers=N`` makes one), Dask's
``Client.get_executor()`` for a cluster, or a ``ThreadPoolExecutor`` (useful only when the
forward releases the GIL). The problem — forward, params, seed/reset — is serialised once in
this process (with ``cloudpickle`` when available, so lambdas and closures travel) and
shipped **once per worker**, not per task:

* with ``workers=N`` the pool's initializer installs it in every worker as it starts;
* with a user's executor each task carries only a token; a worker that does not know the
  token answers :data:`MISSING` and the task is sent again with the payload, which the worker
  then caches (a module-level dict keyed by the token). Until as many tasks as there are
  workers have succeeded, at most one task per worker is in flight, so the misses — and the
  shipments — stay about one per worker whatever the executor's scheduling
  (``ExecutorEvaluator.shipped`` counts them).

In a worker the problem is evaluated by the same :class:`~gradcheck.evaluate.serial.
SerialEvaluator` (or :class:`~gradcheck.evaluate.batched.BatchedEvaluator`) as in a serial check,
on a bit-identical copy of the parameters, so the losses — and the report — are identical to
the serial check's for a deterministic forward. ``seed=`` / ``reset=`` are applied before
every evaluation in the workers too. A worker's exception comes back as the forward's error
(:class:`~gradcheck.errors.ForwardError`, naming the moved entry).
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import pickle
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.errors import ForwardError, GradcheckError, InputError
from gradcheck.evaluate import byvalue
from gradcheck.evaluate.base import Move
from gradcheck.evaluate.batched import BatchedEvaluator
from gradcheck.evaluate.randomness import make_reset
from gradcheck.evaluate.serial import SerialEvaluator
from gradcheck.optional import available, optional_import
from gradcheck.params import tree as trees

#: What a worker answers when it has not received the problem yet.
MISSING = "__gradcheck_missing_problem__"
#: Tasks per worker and per call, so that uneven task durations still keep every worker busy.
TASKS_PER_WORKER = 4
#: Problems cached per worker process (older ones are dropped to free memory).
CACHE_SIZE = 2
#: ``workers=N`` runs the check serially when it is predicted to take less than this (s):
#: starting a pool and shipping the problem costs more than it saves below about a second.
SERIAL_BELOW = 1.0

_CACHE: dict[str, bytes] = {}      # token -> payload, per worker process
_LOCAL = threading.local()          # token -> evaluator, per thread (in-place perturbation
                                    # needs one private copy of the params per thread)


@dataclass
class WorkerProblem:
    """Everything a worker needs to evaluate losses (pickled once per check)."""

    forward: Callable[[Any], Any]
    tree: Any
    names: list[str]
    seed: int | None
    reset: Callable[[], None] | None
    complex_mode: bool
    batched_forward: Callable[[Any], Any] | None = None
    batch_size: int | None = None

    def evaluator(self) -> SerialEvaluator | BatchedEvaluator:
        """The evaluator a worker runs: on its own copy of the tree."""
        arrays = [leaf.array for leaf in trees.flatten(self.tree)]
        reset = make_reset(self.seed, self.reset)
        if self.batched_forward is not None:
            return BatchedEvaluator(self.batched_forward, self.tree, arrays, self.names, reset,
                                    self.complex_mode, self.batch_size)
        return SerialEvaluator(self.forward, self.tree, arrays, self.names, reset,
                               self.complex_mode)


def dumps(obj: Any) -> bytes:
    """Serialise with cloudpickle when available, else with :mod:`gradcheck.evaluate.byvalue`
    (pickle that stores lambdas, closures and ``__main__`` functions by value)."""
    if not available("cloudpickle"):
        return byvalue.dumps(obj)
    return optional_import("cloudpickle", "workers=").dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def install(token: str, payload: bytes | WorkerProblem) -> None:
    """Worker side: keep the problem's bytes under ``token`` (the last CACHE_SIZE ones); a
    forked worker receives the :class:`WorkerProblem` itself (inherited, never pickled)."""
    if token in _CACHE:
        return
    while len(_CACHE) >= CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[token] = payload


def worker_evaluator(token: str) -> Any:
    """This thread's evaluator for ``token``, unpickled from the cached bytes on first use."""
    mine = getattr(_LOCAL, "evaluators", None)
    if mine is None:
        mine = _LOCAL.evaluators = {}
    if token not in mine:
        for old in [k for k in mine if k not in _CACHE]:
            del mine[old]
        payload = _CACHE[token]
        problem = payload if isinstance(payload, WorkerProblem) else pickle.loads(payload)
        mine[token] = problem.evaluator()
    return mine[token]


def run_task(token: str, payload: bytes | None, kind: str, args: Any) -> Any:
    """Worker side: evaluate one chunk; ``(losses, evaluations)`` or :data:`MISSING`.

    ``kind`` is ``"entries"`` with ``args = (leaf, flat_index, values)`` or ``"directions"``
    with ``args`` a list of moves.
    """
    if token not in _CACHE:
        if payload is None:
            return MISSING
        install(token, payload)
    evaluator = worker_evaluator(token)
    before = evaluator.count
    try:
        if kind == "entries":
            losses = evaluator.entries(*args)
        else:
            losses = evaluator.directions(args)
    except (KeyboardInterrupt, SystemExit) as exc:
        # A BaseException kills a threaded worker (Dask) without an answer, and the check
        # would wait forever: send it back as an ordinary error.
        raise ForwardError(f"forward raised {type(exc).__name__} in a worker; the check was "
                           "stopped.") from None
    return losses, evaluator.count - before


def executor_workers(executor: Executor) -> int:
    """How many tasks ``executor`` runs at once (process pools, Dask, thread pools)."""
    n = getattr(executor, "_max_workers", None)
    if isinstance(n, int) and n > 0:
        return n
    client = getattr(executor, "_client", None)
    if client is not None:
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # noqa: BLE001 - any failure: fall back to the local core count
            pass
    return os.cpu_count() or 1


def start_method() -> Any:
    """``fork`` (fast: the workers inherit the imported modules and the problem itself, so
    closures and lambdas need no pickling) when it is safe, else ``forkserver``: forking a
    process that runs other Python threads — JAX's, a Dask client's — can deadlock the child
    (Python warns about it since 3.12). torch's native thread pools are re-created after a
    fork, as its DataLoader relies on. Platforms without fork use their default (spawn)."""
    methods = mp.get_all_start_methods()
    # torch re-creates its own thread pools after a fork (its DataLoader forks too); JAX's
    # threads and other Python threads are not safe to fork.
    threaded = threading.active_count() > 1 or "jax" in sys.modules
    if "fork" in methods and not threaded:
        return mp.get_context("fork")
    if "forkserver" in methods:
        return mp.get_context("forkserver")
    return mp.get_context()


def chunks(n: int, workers: int, per_worker: int = TASKS_PER_WORKER) -> list[slice]:
    """Split ``range(n)`` into about ``workers · per_worker`` contiguous, even slices."""
    if n == 0:
        return []
    pieces = min(n, max(1, workers * per_worker))
    size = math.ceil(n / pieces)
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


class ExecutorEvaluator:
    """The evaluator interface (``base``, ``entries``, ``directions``, ``count``) on an executor.

    Parameters
    ----------
    executor : a ``concurrent.futures.Executor``, or ``None`` with ``workers=N`` to start (and
        later shut down) a local ``ProcessPoolExecutor``.
    problem : what the workers evaluate (:class:`WorkerProblem`: forward, tree, names, the
        check's ``seed=``/``reset=`` re-applied in the workers, complex mode, and a
        ``batched_forward`` with which workers use a :class:`BatchedEvaluator`).
    arrays : the leaves of ``problem.tree``; ``base()`` is evaluated here on them,
        perturbations in the workers.
    workers : the size of the local pool when ``executor`` is ``None``.
    """

    def __init__(self, executor: Executor | None, problem: WorkerProblem,
                 arrays: list[np.ndarray], workers: int | None = None) -> None:
        self.local = SerialEvaluator(problem.forward, problem.tree, arrays, problem.names,
                                     make_reset(problem.seed, problem.reset),
                                     problem.complex_mode)
        self.names = problem.names
        self.token = uuid.uuid4().hex
        self.owned = executor is None
        self.context = start_method() if self.owned else None
        forked = self.context is not None and self.context.get_start_method() == "fork"
        try:
            # a forked worker inherits the problem: closures and lambdas need no pickling
            self.payload = problem if forked else dumps(problem)
        except Exception as exc:
            raise InputError(f"The forward or the params cannot be sent to worker processes "
                             f"({type(exc).__name__}: {exc}); define the forward at module "
                             "level (or install cloudpickle), or check without executor= and "
                             "workers=.") from exc
        if executor is None:
            if not (isinstance(workers, int) and workers >= 1):
                raise InputError(f"workers={workers!r} must be a positive integer such as 2.")
            executor = ProcessPoolExecutor(workers, mp_context=self.context,
                                           initializer=install,
                                           initargs=(self.token, self.payload))
        self.executor = executor
        self.workers = workers if (self.owned or workers) else executor_workers(executor)
        self.remote = 0
        self.shipped = 0      # tasks sent with the payload (≈ one per worker)
        self.succeeded = 0    # tasks answered with losses
        self.progress: Any = None

    # -- the evaluator interface ---------------------------------------------------------
    @property
    def count(self) -> int:
        return self.local.count + self.remote

    @property
    def loss_dtype(self) -> np.dtype | None:
        return self.local.loss_dtype

    def base(self) -> float | complex:
        """The loss at the unperturbed point, evaluated in this process."""
        self.local.progress = self.progress
        return self.local.base()

    def entries(self, leaf: int, flat_index: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Loss with entry ``flat_index[i]`` set to ``values[i, k]``, in chunks of entries."""
        parts = chunks(len(flat_index), self.workers)
        tasks = [("entries", (leaf, flat_index[s], values[s])) for s in parts]
        results = self._map(tasks)
        if not results:
            return np.empty(values.shape, dtype=np.complex128 if self.local.complex_mode
                            else np.float64)
        return np.concatenate(results, axis=0)

    def directions(self, moves: Sequence[Move]) -> np.ndarray:
        """Loss after each move, in chunks of moves."""
        parts = chunks(len(moves), self.workers, per_worker=1)
        results = self._map([("directions", list(moves[s])) for s in parts])
        if not results:
            return np.empty(0)
        return np.concatenate(results)

    def close(self) -> None:
        """Shut down the pool if this evaluator started it; the user's executor stays up."""
        if self.owned:
            self.executor.shutdown(wait=True, cancel_futures=True)

    # -- scheduling -----------------------------------------------------------------------
    def _submit(self, kind: str, args: Any, with_payload: bool) -> Future:
        payload = self.payload if with_payload else None
        self.shipped += bool(with_payload)
        return self.executor.submit(run_task, self.token, payload, kind, args)

    def _limit(self) -> int:
        """Tasks in flight: one per worker while warming up, then two per worker."""
        return self.workers if self.succeeded < self.workers else 2 * self.workers

    def _map(self, tasks: list[tuple[str, Any]]) -> list[np.ndarray]:
        """Run ``tasks`` (kind, args) and return their losses in order.

        A task answered with :data:`MISSING` is resubmitted with the payload. On the first
        error the remaining tasks are cancelled and the error is raised here.
        """
        results: list[np.ndarray | None] = [None] * len(tasks)
        queue = [(i, False) for i in range(len(tasks))][::-1]  # (task, with payload), popped
        pending: dict[Future, int] = {}
        try:
            while pending or queue:
                while queue and len(pending) < self._limit():
                    i, with_payload = queue.pop()
                    pending[self._submit(*tasks[i], with_payload)] = i
                done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                for future in done:
                    i = pending.pop(future)
                    out = self._result(future)
                    if isinstance(out, str) and out == MISSING:
                        queue.append((i, True))
                        continue
                    losses, n = out
                    results[i] = losses
                    self.remote += n
                    self.succeeded += 1
                    if self.progress is not None:
                        self.progress.advance(n)
        finally:
            for future in pending:
                future.cancel()
        return [r for r in results if r is not None]

    def _result(self, future: Future) -> Any:
        try:
            return future.result()
        except GradcheckError:
            raise
        except Exception as exc:
            if _unguarded_script(self.context, exc):
                raise ForwardError(
                    "The worker processes died while starting: they re-import your script, "
                    "which starts the check again — put the check under "
                    "`if __name__ == \"__main__\":` (or run it without workers=).") from exc
            raise ForwardError(f"A worker failed with {type(exc).__name__}: {exc}; the forward "
                               "may have crashed the worker (memory, a native library) — run "
                               "the check without executor= or workers= to see the error "
                               "directly.") from exc


def _unguarded_script(context: Any, exc: BaseException) -> bool:
    """A pool started by spawn/forkserver broke while the main module is a script: the usual
    cause is a script without an ``if __name__ == "__main__":`` guard (its workers re-run it,
    and the check inside tries to start processes while the worker is still starting)."""
    if context is None or context.get_start_method() == "fork":
        return False
    main = sys.modules.get("__main__")
    return isinstance(exc, BrokenProcessPool) and bool(getattr(main, "__file__", None))
