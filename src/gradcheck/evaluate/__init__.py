"""Stage 2 — evaluate the loss at perturbed parameters: the :class:`Evaluator` protocol and
its serial, batched and executor (process pool, Dask) implementations; randomness control;
the progress bar."""
