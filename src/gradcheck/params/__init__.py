"""Stage 1 — the parameters: trees of arrays with names, which entries to check, the arrays
the numerics perturb (with exact restore), and the analytic gradient taken in and validated."""
