"""How a check walks the parameters: ``elementwise`` (every selected entry) and
``directional`` (one random direction per tensor, then localisation). Every mode has the same
signature, ``run(problem) -> list[TensorReport]``, and :func:`gradcheck.check.check` picks one."""
