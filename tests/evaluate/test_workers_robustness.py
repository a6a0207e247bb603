"""workers= and executors when things go wrong: a KeyboardInterrupt inside a threaded Dask
worker ends the check instead of hanging it; a script without an ``if __name__ ==
"__main__":`` guard is named; after ``import torch`` closures still work (fork)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gradcheck.optional import available

SRC = str(Path(__file__).resolve().parents[2] / "src")


def run_script(tmp_path: Path, text: str, timeout: float = 180) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(text))
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=tmp_path)


@pytest.mark.skipif(not available("distributed"), reason="needs dask.distributed")
def test_keyboard_interrupt_in_a_threaded_dask_worker_ends_the_check(tmp_path) -> None:
    proc = run_script(tmp_path, """
        import numpy as np, gradcheck as gc
        from dask.distributed import Client, LocalCluster

        def f(p):
            if p[1] != 2.0:
                raise KeyboardInterrupt
            return float(np.sum(p ** 2))

        if __name__ == "__main__":
            with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                              dashboard_address=":0") as c, Client(c) as client:
                try:
                    gc.check(f, lambda p: 2 * p, np.array([1.0, 2.0, 3.0]),
                             executor=client.get_executor(), progress=False)
                except gc.ForwardError as exc:
                    print("RAISED", exc)
    """)
    assert "RAISED" in proc.stdout and "KeyboardInterrupt" in proc.stdout, proc.stderr[-2000:]


def test_unguarded_script_with_threads_is_named(tmp_path) -> None:
    # a live thread makes the pool start by forkserver, which re-imports the script
    proc = run_script(tmp_path, """
        import threading, time
        import numpy as np, gradcheck as gc
        from gradcheck.evaluate import parallel

        parallel.SERIAL_BELOW = 0.0
        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
        try:
            gc.check(lambda p: float(np.sum(p ** 2)), lambda p: 2 * p, np.linspace(0, 1, 8),
                     workers=2, progress=False)
            print("PASSED")
        except gc.ForwardError as exc:
            print("RAISED", exc)
    """)
    assert "RAISED" in proc.stdout and '__name__ == "__main__"' in proc.stdout, \
        (proc.stdout[-2000:], proc.stderr[-2000:])


@pytest.mark.skipif(not available("torch"), reason="needs torch")
def test_closures_on_workers_after_importing_torch_without_a_guard(tmp_path) -> None:
    proc = run_script(tmp_path, """
        import torch  # noqa: F401
        import numpy as np, gradcheck as gc
        from gradcheck.evaluate import parallel

        parallel.SERIAL_BELOW = 0.0
        scale = 3.0
        r = gc.check(lambda p: scale * float(np.sum(p ** 2)), lambda p: 2 * scale * p,
                     np.linspace(0, 1, 8), workers=2, progress=False)
        print("STATUS", r.status, any("serially" in n for n in r.notes))
    """)
    assert "STATUS pass False" in proc.stdout, (proc.stdout[-2000:], proc.stderr[-2000:])


def test_closures_travel_by_value_without_cloudpickle() -> None:
    """A lambda over a closure, a nested function and a module reference, pickled without
    cloudpickle, evaluate the same in a fresh interpreter-state (unpickled here)."""
    import pickle

    import numpy as np

    from gradcheck.evaluate import byvalue

    scale = 3.0

    def inner(x):
        return np.sum(np.sin(x)) * scale

    def forward(p, offset=1.0):
        return inner(p["x"]) + offset

    data = byvalue.dumps((forward, lambda p: 2 * scale * p["x"]))
    f, g = pickle.loads(data)
    x = {"x": np.linspace(0, 1, 5)}
    assert f(x) == forward(x)
    assert np.array_equal(g(x), 2 * scale * x["x"])


def test_workers_by_forkserver_without_cloudpickle(tmp_path) -> None:
    proc = run_script(tmp_path, """
        import threading, time
        import numpy as np, gradcheck as gc
        from gradcheck.evaluate import parallel

        if __name__ == "__main__":
            parallel.SERIAL_BELOW = 0.0
            parallel.available = lambda name: False       # as if cloudpickle were missing
            threading.Thread(target=time.sleep, args=(30,), daemon=True).start()  # forkserver
            scale = 3.0
            r = gc.check(lambda p: scale * float(np.sum(p ** 2)), lambda p: 2 * scale * p,
                         np.linspace(0, 1, 8), workers=2, progress=False)
            print("STATUS", r.status, parallel.start_method().get_start_method())
    """)
    assert "STATUS pass forkserver" in proc.stdout, (proc.stdout[-2000:], proc.stderr[-2000:])
