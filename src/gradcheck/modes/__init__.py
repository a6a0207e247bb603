"""How a check walks the parameters: ``elementwise`` (every selected entry) and
``directional`` (one random direction per tensor, then localisation). Every mode has the same
signature, ``run(state: Run) -> list[TensorReport]``, and :func:`gradcheck.check.check` picks
one. Forward mode, second order and vector-valued checks are built on top of ``check()`` in
:mod:`gradcheck.derivatives`.
"""
