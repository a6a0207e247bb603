"""Stage 6 — diagnosis: patterns relating the analytic and numeric gradients of a failing
tensor (scale, sign, transpose, swap, time steps, edges) and the one sentence that names the
likely bug."""
