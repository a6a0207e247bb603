r"""Vanilla character RNN with hand-written BPTT and named, realistic bugs.

Model
-----
Parameters (the lecture's names and shapes; ``H`` hidden units, ``V`` vocabulary size):

=====  ========  ==========================
name   shape     role
=====  ========  ==========================
``U``  (H, V)    input -> hidden
``W``  (H, H)    hidden -> hidden (square)
``b``  (H,)      hidden bias
``V``  (V, H)    hidden -> output
``c``  (V,)      output bias
=====  ========  ==========================

In the lecture's column-vector notation, for one sequence :math:`x_1, \dots, x_T` with targets
:math:`y_1, \dots, y_T` and initial state :math:`h_0`,

.. math::

    h_t = \tanh(U x_t + W h_{t-1} + b), \qquad o_t = V h_t + c,

    \ell = \sum_{t=1}^{T} -\log \operatorname{softmax}(o_t)_{y_t}.

The loss of a batch of ``B`` sequences is the mean over the batch of the per-sequence
:math:`\ell` (sum over time, mean over batch).

**Batch convention.** The code stores a batch as *rows*: ``x`` has shape ``(B, T, V)`` and a
hidden state has shape ``(B, H)``, so the formulas above are evaluated as
``h_t = tanh(x_t @ U.T + h_{t-1} @ W.T + b)`` and ``o_t = h_t @ V.T + c``. The parameter
shapes are the column-convention ones of the table (``U`` is ``H x V``), and every gradient
has the shape of its parameter.

Gradients (full backpropagation through time)
----------------------------------------------
With :math:`p_t = \operatorname{softmax}(o_t)` and :math:`Y_t` the one-hot targets, row form:

.. math::

    \delta o_t = (p_t - Y_t) / B, \qquad
    \partial V = \sum_t \delta o_t^\top h_t, \qquad \partial c = \sum_{t,\text{batch}} \delta o_t,

    \delta h_t = \delta o_t V + \delta h^{\text{next}}_t, \qquad
    \delta z_t = \delta h_t \odot (1 - h_t^2), \qquad \delta h^{\text{next}}_{t-1} = \delta z_t W,

    \partial U = \sum_t \delta z_t^\top x_t, \qquad
    \partial W = \sum_t \delta z_t^\top h_{t-1}, \qquad
    \partial b = \sum_{t,\text{batch}} \delta z_t.

Bugs
----
:data:`BUGS` lists mistakes that people really make when writing the backward pass by hand.
Each one changes only the backward pass (the loss is unchanged), changes exactly the
gradients named in :attr:`Bug.affects`, and leaves the other gradients bit-identical to the
correct ones. Pass the name as ``bug=`` to :func:`forward_backward` or :func:`make_problem`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np

from gradcheck.examples import text
from gradcheck.examples.bugs import Bug, with_expected

__all__ = [
    "BUGS",
    "PARAM_NAMES",
    "Bug",
    "RNNProblem",
    "forward_backward",
    "forward_loss",
    "init_params",
    "make_forward_backward",
    "make_problem",
    "torch_twin",
    "train",
]

PARAM_NAMES: tuple[str, ...] = ("U", "W", "b", "V", "c")
"""Parameter names, in the order used by :func:`torch_twin`."""

Params = Mapping[str, np.ndarray]
Grads = dict[str, np.ndarray]
ForwardBackward = Callable[[np.ndarray, np.ndarray, np.ndarray, Params], tuple[float, Grads]]


# --------------------------------------------------------------------------------------------
# Bug catalogue
# --------------------------------------------------------------------------------------------


def _bug(name: str, description: str, *affects: str) -> tuple[str, Bug]:
    return name, Bug(name=name, description=description, affects=frozenset(affects))


BUGS: dict[str, Bug] = dict(
    [
        _bug(
            "transpose",
            "The W gradient is accumulated as h_{t-1}^T dz_t instead of dz_t^T h_{t-1}, so "
            "dW comes out transposed (W is square, so the shape still fits).",
            "W",
        ),
        _bug(
            "sign",
            "The V gradient is computed from (one-hot target - softmax) instead of "
            "(softmax - one-hot target), which flips the sign of dV.",
            "V",
        ),
        _bug(
            "no_dh_next",
            "Backpropagation through time forgets to add the gradient dh_next that flows "
            "back from step t+1 into h_t, so each step only sees its own output's error.",
            "U",
            "W",
            "b",
        ),
        _bug(
            "tanh_prime",
            "The tanh derivative is taken at the previous hidden state, 1 - h_{t-1}^2, "
            "instead of at the current one, 1 - h_t^2.",
            "U",
            "W",
            "b",
        ),
        _bug(
            "bias_one_step",
            "The hidden-bias gradient is assigned with db = sum(dz_t) instead of accumulated "
            "with db += sum(dz_t), so only the first time step's contribution survives.",
            "b",
        ),
        _bug(
            "batch_scale",
            "The output-layer gradients dV and dc are built from softmax - one-hot before "
            "dividing by the batch size, so they are B times too large.",
            "V",
            "c",
        ),
        _bug(
            "first_step_h0",
            "At the first time step the W gradient uses hs[t-1] = hs[-1], which Python wraps "
            "around to the last hidden state h_T, instead of the initial state h_0.",
            "W",
        ),
        _bug(
            "softmax_no_target",
            "The output gradient is taken as softmax(o_t) alone, forgetting to subtract the "
            "one-hot target, so every gradient is wrong.",
            "U",
            "W",
            "b",
            "V",
            "c",
        ),
    ]
)
"""All bug variants, keyed by name."""

BUGS = with_expected(BUGS, {
    "transpose": "transpose own_formula",
    "sign": "sign own_formula",
    "no_dh_next": "shared",
    "tanh_prime": "shared",
    "bias_one_step": "one_term own_formula",
    "batch_scale": "scale shared",
    "first_step_h0": "one_step first_step own_formula",
    "softmax_no_target": "one_hot shared",
})
"""The diagnosis kinds that name each bug rightly (``Bug.expected``): ``shared`` and
``own_formula`` locate the bug from which of ``U, W, b`` / ``V, c`` fail (the problem's
``context["groups"]``)."""


def _check_bug(bug: str | None) -> None:
    """Raise ``ValueError`` if ``bug`` is neither ``None`` nor a key of :data:`BUGS`."""
    if bug is not None and bug not in BUGS:
        valid = ", ".join(sorted(BUGS))
        raise ValueError(f"unknown bug {bug!r}; valid names are: {valid} (or None)")


# --------------------------------------------------------------------------------------------
# Forward pass (shared by the single and the batched-over-parameters versions)
# --------------------------------------------------------------------------------------------


def _dtype(params: Params) -> np.dtype:
    """Computation dtype: the common dtype of the five parameter arrays."""
    return np.result_type(*(np.asarray(params[k]) for k in PARAM_NAMES))


def _mT(a: np.ndarray) -> np.ndarray:
    """Transpose the last two axes (works with or without a leading stack axis)."""
    return np.swapaxes(a, -1, -2)


def _time_major(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``(B, T, V)`` inputs -> ``(T, B, V)`` in the computation dtype."""
    return np.ascontiguousarray(np.swapaxes(np.asarray(x), 0, 1), dtype=dtype)


def _hidden_states(
    h0: np.ndarray, xs: np.ndarray, U: np.ndarray, W: np.ndarray, b: np.ndarray
) -> np.ndarray:
    r"""Run the recurrence :math:`h_t = \tanh((x_t U^\top + b) + h_{t-1} W^\top)`.

    Parameters
    ----------
    h0 : numpy.ndarray
        Initial state, ``(B, H)``, already in the computation dtype.
    xs : numpy.ndarray
        Time-major inputs ``(T, B, V)`` in the computation dtype.
    U, W, b : numpy.ndarray
        ``(..., H, V)``, ``(..., H, H)``, ``(..., H)``; an optional leading stack axis
        ``...`` evaluates several parameter vectors at once.

    Returns
    -------
    numpy.ndarray
        All hidden states :math:`h_1, \dots, h_T`, shape ``(..., T, B, H)``.
    """
    T, B, n_vocab = xs.shape
    lead, hidden = U.shape[:-2], U.shape[-2]
    # Input projections of all steps and all stacked U in ONE matmul:
    # (T*B, V) @ (V, K*H) -> (T, B, ..., H), plus b, then moved to (..., T, B, H).
    u_flat = np.moveaxis(U, -1, 0).reshape(n_vocab, -1)
    xu = (xs.reshape(T * B, n_vocab) @ u_flat).reshape((T, B) + lead + (hidden,)) + b
    # (T, ..., B, H), contiguous: each step reads one contiguous slab
    xu = np.ascontiguousarray(np.moveaxis(xu, 1, -2))
    times_wt = _times_transposed(W)
    hs = np.empty(lead + (T, B, hidden), dtype=np.result_type(xu, W, h0))
    h = h0
    for t in range(T):
        a = times_wt(h)
        a += xu[t]
        h = np.tanh(a)
        hs[..., t, :, :] = h
    return hs


def _times_transposed(M: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    r"""``x ↦ x @ Mᵀ`` for ``M`` of shape ``(P, Q)`` or a stack ``(K, P, Q)``, prepared once
    per forward call and applied at every time step.

    A stack that is one matrix broadcast (what a batched check passes for the leaves it does
    not move) is multiplied once for all rows. A stack whose matrices differ from the first
    in a few entries — the rows of an elementwise or a small directional check — is
    multiplied as :math:`x_k M_0^	op + x_k (M_k - M_0)^	op`: one large BLAS product with the
    shared :math:`M_0` (which stays in cache) plus the few differing entries; the difference
    is exact (Sterbenz), so only the rounding of the sum changes. Any other stack uses
    numpy's stacked matmul.
    """
    if M.ndim != 3:
        Mt = _mT(M)
        return lambda x: x @ Mt
    K, P, Q = M.shape
    first = M[0]
    if M.strides[0] == 0:
        return lambda x: _flat_times(np.broadcast_to(x, (K,) + x.shape[-2:]), first)
    k, i, j = np.nonzero(M != first)
    if k.size > 4 * K:
        Mt = _mT(M)
        return lambda x: x @ Mt
    d = M[k, i, j] - first[i, j]

    def times(x: np.ndarray) -> np.ndarray:
        xb = np.broadcast_to(x, (K,) + x.shape[-2:])
        out = _flat_times(xb, first)
        np.add.at(_mT(out), (k, i), xb[k, :, j] * d[:, None])
        return out
    return times


def _flat_times(x: np.ndarray, M: np.ndarray) -> np.ndarray:
    """``x @ Mᵀ`` for a stack ``x`` of shape ``(K, R, Q)`` as one ``(K·R, Q) @ (Q, P)``."""
    return (x.reshape(-1, x.shape[-1]) @ _mT(M)).reshape(x.shape[:-1] + (M.shape[0],))


def _logits(hs: np.ndarray, V: np.ndarray, c: np.ndarray) -> np.ndarray:
    r""":math:`o_t = h_t V^\top + c` for all steps: ``(..., T, B, H)`` -> ``(..., T, B, V)``."""
    *lead, T, B, hidden = hs.shape
    o = _times_transposed(V)(hs.reshape(*lead, T * B, hidden)) + c[..., None, :]
    return o.reshape(*lead, T, B, V.shape[-2])


def _target_log_probs(o: np.ndarray, y_tb: np.ndarray) -> np.ndarray:
    r"""Log-softmax of the logits at the target ids, complex-step safe.

    .. math::

        \log \operatorname{softmax}(o)_y = (o_y - m) - \log \sum_k \exp(o_k - m),
        \qquad m = \max_k \operatorname{Re}(o_k).

    The shift ``m`` is taken from the real part and treated as a constant (the identity holds
    for any constant ``m``), so only complex-analytic operations touch ``o`` and the complex
    step method works.

    Parameters
    ----------
    o : numpy.ndarray
        Logits ``(..., T, B, V)``, real or complex.
    y_tb : numpy.ndarray
        Target ids ``(T, B)``.

    Returns
    -------
    numpy.ndarray
        ``(..., T, B)`` log-probabilities of the targets.
    """
    m = o.real.max(axis=-1, keepdims=True)
    s = o - m
    log_z = np.log(np.exp(s).sum(axis=-1))
    idx = np.broadcast_to(y_tb[..., None], o.shape[:-1] + (1,))
    return np.take_along_axis(s, idx, axis=-1)[..., 0] - log_z


def _mean_nll(o: np.ndarray, y_tb: np.ndarray) -> np.ndarray:
    r""":math:`-\frac{1}{B}\sum_{t,i} \log p_t[y_{i,t}]` from logits ``(..., T, B, V)``."""
    return -_target_log_probs(o, y_tb).sum(axis=(-2, -1)) / y_tb.shape[1]


def _loss_array(h0: np.ndarray, x: np.ndarray, y: np.ndarray, params: Params) -> np.ndarray:
    """Loss as a NumPy array in the computation dtype; shape ``(K,)`` for stacked params."""
    dtype = _dtype(params)
    U, W, b, V, c = (np.asarray(params[k]) for k in PARAM_NAMES)
    xs = _time_major(x, dtype)
    hs = _hidden_states(np.asarray(h0, dtype=dtype), xs, U, W, b)
    return _mean_nll(_logits(hs, V, c), np.asarray(y).T)


def _as_scalar(value: np.ndarray) -> float | complex:
    """A Python ``complex`` for complex results, a Python ``float`` otherwise."""
    return complex(value) if np.iscomplexobj(value) else float(value)


def forward_loss(h0: np.ndarray, x: np.ndarray, y: np.ndarray, params: Params) -> float:
    r"""Loss :math:`L = \frac{1}{B}\sum_{i=1}^{B} \sum_{t=1}^{T} -\log p_{t}[y_{i,t}]`.

    The arithmetic runs in the dtype of ``params`` (``float32``, ``float64`` or
    ``complex128``); inputs are cast to it, nothing is upcast.

    Parameters
    ----------
    h0 : numpy.ndarray
        Initial hidden state, ``(B, H)``.
    x : numpy.ndarray
        One-hot inputs, ``(B, T, V)``.
    y : numpy.ndarray
        Target ids, ``(B, T)``.
    params : mapping
        ``"U"``, ``"W"``, ``"b"``, ``"V"``, ``"c"`` with the shapes of the module table.

    Returns
    -------
    float or complex
        A Python ``float`` for real parameters; a Python ``complex`` for complex ones (for
        the complex step method, :math:`\partial L/\partial p \approx \operatorname{Im}
        L(p + i\epsilon e)/\epsilon`).
    """
    return _as_scalar(_loss_array(h0, x, y, params))


# --------------------------------------------------------------------------------------------
# Backward pass (BPTT) with optional bug
# --------------------------------------------------------------------------------------------


def _output_grads(
    probs: np.ndarray, targets: np.ndarray, hs: np.ndarray, batch: int, bug: str | None
) -> tuple[np.ndarray, Grads]:
    r"""Gradient at the logits and the output-layer gradients ``dV``, ``dc``.

    Returns ``do`` (``(T, B, V)``, :math:`\delta o_t = (p_t - Y_t)/B`, the signal sent back into
    the hidden layer) and ``{"V": dV, "c": dc}``.
    """
    T, B, hidden = hs.shape
    g = probs - targets
    if bug == "softmax_no_target":
        g = probs
    do = g / batch
    h_flat = hs.reshape(T * B, hidden)

    dV = do.reshape(T * B, -1).T @ h_flat
    dc = do.sum(axis=(0, 1))
    if bug == "sign":
        dV = ((targets - probs) / batch).reshape(T * B, -1).T @ h_flat
    elif bug == "batch_scale":
        dV = g.reshape(T * B, -1).T @ h_flat
        dc = g.sum(axis=(0, 1))
    return do, {"V": dV, "c": dc}


def _bptt(
    do: np.ndarray,
    hs: np.ndarray,
    h0: np.ndarray,
    xs: np.ndarray,
    params: Params,
    bug: str | None,
) -> Grads:
    r"""Backpropagation through time for ``dU``, ``dW``, ``db`` (see the module docstring)."""
    U, W, V = params["U"], params["W"], params["V"]
    dU = np.zeros_like(U, dtype=do.dtype)
    dW = np.zeros_like(W, dtype=do.dtype)
    db = np.zeros(W.shape[0], dtype=do.dtype)
    dh_next = np.zeros_like(h0)
    for t in reversed(range(hs.shape[0])):
        h = hs[t]
        h_prev = hs[t - 1] if t > 0 else h0
        dh = do[t] @ V
        if bug != "no_dh_next":
            dh = dh + dh_next
        if bug == "tanh_prime":
            dz = dh * (1 - h_prev * h_prev)
        else:
            dz = dh * (1 - h * h)
        dU += dz.T @ xs[t]
        if bug == "transpose":
            dW += h_prev.T @ dz
        elif bug == "first_step_h0":
            dW += dz.T @ hs[t - 1]
        else:
            dW += dz.T @ h_prev
        if bug == "bias_one_step":
            db = dz.sum(axis=0)
        else:
            db += dz.sum(axis=0)
        dh_next = dz @ W
    return {"U": dU, "W": dW, "b": db}


def forward_backward(
    h0: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    params: Params,
    *,
    bug: str | None = None,
) -> tuple[float, Grads]:
    """Loss and its gradient by full backpropagation through time.

    Parameters
    ----------
    h0, x, y, params
        As in :func:`forward_loss` (real parameters).
    bug : str or None
        ``None`` for the correct gradient, or a key of :data:`BUGS` to inject that mistake.
        The returned loss is the same either way.

    Returns
    -------
    loss : float
        Equal to ``forward_loss(h0, x, y, params)``.
    grads : dict
        Same keys and shapes as ``params``, in the computation dtype.

    Raises
    ------
    ValueError
        If ``bug`` is not ``None`` and not a key of :data:`BUGS`.
    """
    _check_bug(bug)
    dtype = _dtype(params)
    U, W, b, V, c = (np.asarray(params[k]) for k in PARAM_NAMES)
    xs = _time_major(x, dtype)
    y_tb = np.asarray(y).T
    h0 = np.asarray(h0, dtype=dtype)
    batch = y_tb.shape[1]

    hs = _hidden_states(h0, xs, U, W, b)
    o = _logits(hs, V, c)
    loss = _mean_nll(o, y_tb)

    e = np.exp(o - o.max(axis=-1, keepdims=True))
    probs = e / e.sum(axis=-1, keepdims=True)
    targets = (y_tb[..., None] == np.arange(o.shape[-1])).astype(dtype)
    do, out_grads = _output_grads(probs, targets, hs, batch, bug)
    grads = _bptt(do, hs, h0, xs, {"U": U, "W": W, "V": V}, bug)
    grads.update(out_grads)
    return float(loss), {k: grads[k] for k in PARAM_NAMES}


def make_forward_backward(bug: str | None = None) -> ForwardBackward:
    """``forward_backward`` with ``bug`` bound; validates ``bug`` immediately."""
    _check_bug(bug)
    return partial(forward_backward, bug=bug)


# --------------------------------------------------------------------------------------------
# Parameters and training
# --------------------------------------------------------------------------------------------


def init_params(vocab_size: int, hidden_size: int, seed: int = 0) -> dict[str, np.ndarray]:
    r"""Small random ``float64`` parameters.

    Weights ``U``, ``W``, ``V`` are drawn i.i.d. from :math:`\mathcal N(0, 0.1^2)` with
    ``numpy.random.default_rng(seed)``; biases ``b``, ``c`` start at zero.
    """
    rng = np.random.default_rng(seed)
    return {
        "U": rng.normal(0.0, 0.1, size=(hidden_size, vocab_size)),
        "W": rng.normal(0.0, 0.1, size=(hidden_size, hidden_size)),
        "b": np.zeros(hidden_size),
        "V": rng.normal(0.0, 0.1, size=(vocab_size, hidden_size)),
        "c": np.zeros(vocab_size),
    }


TRAIN_BATCHES = 4
"""Number of distinct fixed batches :func:`train` cycles through."""

GRAD_CLIP = 5.0
"""Element-wise gradient clipping bound used by :func:`train` (as in min-char-rnn)."""


def train(
    params: Params,
    steps: int,
    lr: float = 0.05,
    batch_size: int = 4,
    seq_len: int = 10,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    r"""A few plain SGD steps with the *correct* gradient.

    Step ``k`` uses the batch ``text.fixed_batch(batch_size, seq_len, seed + k % 4)`` with a
    zero initial state and updates :math:`p \leftarrow p - \text{lr} \cdot
    \operatorname{clip}(\partial L / \partial p, -5, 5)`. Deterministic; the input is not
    modified.

    Returns
    -------
    dict
        New parameter arrays (copies), same keys, shapes and dtypes.
    """
    new = {k: np.array(params[k], copy=True) for k in PARAM_NAMES}
    hidden = new["W"].shape[0]
    batches = [
        text.fixed_batch(batch_size, seq_len, seed + i) for i in range(min(steps, TRAIN_BATCHES))
    ]
    h0 = np.zeros((batch_size, hidden), dtype=_dtype(new))
    for k in range(steps):
        x, y = batches[k % TRAIN_BATCHES]
        _, grads = forward_backward(h0, x, y, new)
        for name in PARAM_NAMES:
            new[name] -= lr * np.clip(grads[name], -GRAD_CLIP, GRAD_CLIP)
    return new


# --------------------------------------------------------------------------------------------
# Problem object
# --------------------------------------------------------------------------------------------


@dataclass
class RNNProblem:
    """One fixed gradient-checking problem: data, a parameter point and a backward variant.

    Attributes
    ----------
    params : dict
        Parameter point at which to check (``float64``).
    h0 : numpy.ndarray
        Initial hidden state ``(B, H)``.
    x : numpy.ndarray
        One-hot inputs ``(B, T, V)``.
    y : numpy.ndarray
        Target ids ``(B, T)``.
    bug : str or None
        Backward variant used by :meth:`forward_backward` (``None`` = correct).
    """

    params: dict[str, np.ndarray]
    h0: np.ndarray
    x: np.ndarray
    y: np.ndarray
    bug: str | None = None

    def __post_init__(self) -> None:
        _check_bug(self.bug)

    def forward(self, params: Params) -> float | complex:
        """Loss at ``params`` (see :func:`forward_loss`; float32/float64/complex128)."""
        return forward_loss(self.h0, self.x, self.y, params)

    def forward_backward(self, params: Params) -> tuple[float, Grads]:
        """Loss and the (possibly buggy) analytic gradient at ``params``."""
        return forward_backward(self.h0, self.x, self.y, params, bug=self.bug)

    def float32_forward(self, params: Params) -> float:
        """The loss computed in float32 and returned as a Python float (as ``loss.item()`` of
        a float32 torch model): its rounding noise is float32's, whatever ``params`` are."""
        return float(self.forward({k: np.asarray(v, np.float32) for k, v in params.items()}))

    def float32_forward_backward(self, params: Params) -> tuple[float, Grads]:
        """:meth:`forward_backward` with the gradients cast to float32 (the companion of
        :meth:`float32_forward`)."""
        loss, grads = self.forward_backward(params)
        return loss, {k: g.astype(np.float32) for k, g in grads.items()}

    def batched_forward(self, stacked_params: Params) -> np.ndarray:
        """Losses of ``K`` parameter vectors at once, vectorised over ``K``.

        Parameters
        ----------
        stacked_params : mapping
            Same keys as ``params``; each array has an extra leading axis of length ``K``
            (``U`` is ``(K, H, V)``, ``b`` is ``(K, H)``, ...).

        Returns
        -------
        numpy.ndarray
            Shape ``(K,)``; ``out[k]`` equals ``forward({name: a[k] ...})`` up to rounding.
        """
        lead = {np.shape(stacked_params[k])[0] for k in PARAM_NAMES}
        if len(lead) != 1:
            raise ValueError(f"stacked parameters disagree on the leading axis: {sorted(lead)}")
        for k in PARAM_NAMES:
            if np.shape(stacked_params[k])[1:] != self.params[k].shape:
                raise ValueError(
                    f"stacked {k!r} has shape {np.shape(stacked_params[k])}, expected "
                    f"(K, {', '.join(map(str, self.params[k].shape))})"
                )
        return _loss_array(self.h0, self.x, self.y, stacked_params)

    @property
    def context(self) -> dict[str, object]:
        """What the diagnosis may know about the model (``context=`` of the check): the batch
        size and sequence length, and the groups of parameters built from one shared upstream
        gradient, from the input to the loss (``U, W, b`` from the hidden pre-activation's,
        ``V, c`` from the logits')."""
        batch, steps = np.shape(self.y)
        return {"batch_size": int(batch), "seq_len": int(steps),
                "groups": [["U", "W", "b"], ["V", "c"]]}

    @property
    def expected_bad(self) -> frozenset[str]:
        """Parameter names whose gradient :meth:`forward_backward` gets wrong."""
        return frozenset() if self.bug is None else BUGS[self.bug].affects

    @property
    def n_params(self) -> int:
        """Total number of scalar parameters, :math:`2HV + H^2 + H + V`."""
        return sum(int(np.size(self.params[k])) for k in PARAM_NAMES)


def make_problem(
    bug: str | None = None,
    *,
    hidden: int = 16,
    seq_len: int = 10,
    batch: int = 4,
    train_steps: int = 20,
    seed: int = 0,
) -> RNNProblem:
    """Build the lecture's RNN gradient-checking problem.

    Parameters come from ``init_params(VOCAB_SIZE, hidden, seed)`` followed by
    ``train(..., train_steps, lr=0.05, batch, seq_len, seed + 1)`` with the correct gradient
    (also when ``bug`` is set), so the check runs mid-training and not at the initial point.
    The check batch is ``text.fixed_batch(batch, seq_len, seed)``. The initial state is a
    fixed non-zero ``h0 = tanh(0.5 z)``, ``z ~ N(0, 1)``, as when the state is carried over
    from the previous chunk; with ``h0 = 0`` some mistakes at ``t = 1`` would be invisible.

    With the 27-symbol vocabulary the default (``hidden=16``) has 1163 parameters;
    ``hidden=25`` has 2027 and ``hidden=130`` has 24077.
    """
    _check_bug(bug)
    params = init_params(text.VOCAB_SIZE, hidden, seed)
    params = train(params, train_steps, 0.05, batch, seq_len, seed + 1)
    x, y = text.fixed_batch(batch, seq_len, seed)
    rng = np.random.default_rng([seed, 1])
    h0 = np.tanh(0.5 * rng.standard_normal((batch, hidden)))
    return RNNProblem(params=params, h0=h0, x=x, y=y, bug=bug)


# --------------------------------------------------------------------------------------------
# PyTorch twin
# --------------------------------------------------------------------------------------------


def torch_twin(problem: RNNProblem) -> tuple[Callable[..., object], tuple[object, ...]]:
    """The same loss written in PyTorch, for comparison with ``torch.autograd``.

    Returns
    -------
    fn : callable
        ``fn(U, W, b, V, c) -> 0-d tensor``, the loss of :func:`forward_loss` on the problem's
        data, for ``float64`` tensors.
    tensors : tuple of torch.Tensor
        ``(U, W, b, V, c)`` copies of ``problem.params`` as ``float64`` leaf tensors with
        ``requires_grad=True``.
    """
    import torch

    x = torch.from_numpy(np.ascontiguousarray(problem.x, dtype=np.float64))
    y = torch.from_numpy(np.ascontiguousarray(problem.y, dtype=np.int64))
    h0 = torch.from_numpy(np.ascontiguousarray(problem.h0, dtype=np.float64))
    batch, steps = y.shape

    def fn(U, W, b, V, c):
        h = h0
        loss = torch.zeros((), dtype=U.dtype)
        for t in range(steps):
            h = torch.tanh(x[:, t] @ U.T + h @ W.T + b)
            o = h @ V.T + c
            loss = loss + torch.nn.functional.cross_entropy(o, y[:, t], reduction="sum")
        return loss / batch

    tensors = tuple(
        torch.tensor(problem.params[k], dtype=torch.float64, requires_grad=True)
        for k in PARAM_NAMES
    )
    return fn, tensors
