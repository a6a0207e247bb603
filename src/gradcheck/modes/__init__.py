"""How a check walks the parameters: ``elementwise`` (every selected entry) and
``directional`` (one random direction per tensor, then localisation). Every mode has the same
signature, ``run(problem) -> list[TensorReport]``, and :func:`gradcheck.check.check` picks one.

The other derivatives people write are checked through :func:`gradcheck.check` on a scalar
projection whose gradient the user's code gives (:mod:`~gradcheck.modes.projection`):
:func:`~gradcheck.modes.jvp.check_jvp` (forward mode), :func:`~gradcheck.modes.hvp.check_hvp`
(second order) and :func:`~gradcheck.modes.vjp.check_vjp` (vector-valued functions);
:mod:`~gradcheck.modes.combine` merges their reports.
"""
