"""Checks of the other derivatives people write, each built on :func:`gradcheck.check`:
forward mode (``check_jvp``), second order (``check_hvp``, double backward), vector-valued
functions through cotangents (``check_vjp``), and one report from several of them.

Each reduces its derivative to a scalar function whose gradient the ordinary check verifies
(e.g. φ(θ) = ⟨∇f(θ), v⟩ has gradient H·v), so the same modes, error bars, verdicts, executors
and diagnosis apply; they sit on top of ``check()`` beside the layer check, not inside it.
"""
