"""Plain numpy twins of fastnn's kernels, written straight from the equations.

Nothing here imports fastnn. Every function is the slow, obvious version of one
kernel: whole-array numpy, Python loops over mini-batches, and float64
arithmetic throughout (inputs of any float dtype are promoted), so the twins
are the yardstick for the float32 kernels as well.

Conventions (scikit-learn 1.9's, which fastnn reproduces):

* layer ``i`` maps ``units[i]`` inputs to ``units[i + 1]`` outputs,
  ``Z_i = A_{i-1} W_i + b_i`` and ``A_i = f(Z_i)`` with ``A_{-1} = X``;
* the flat parameter vector holds every ``W_i`` (row-major), then every
  ``b_i``;
* losses are sample-weighted means over samples; the squared error is then
  averaged over outputs (and halved), the other losses are summed over outputs;
* the gradient is that of sklearn's backpropagation: the output delta is
  ``(A - Y) * sw`` for every loss, ``dL/dW_i = (A_{i-1}^T D_i + alpha W_i) /
  sum(sw)`` and ``dL/db_i = sum_rows(D_i) / sum(sw)``.
"""

import numpy as np
import scipy.sparse as sp
from scipy.special import erf

HIDDEN_ACTIVATIONS = (
    "identity",
    "logistic",
    "tanh",
    "relu",
    "leaky_relu",
    "elu",
    "gelu",
    "silu",
    "softplus",
)
LEAKY_SLOPE = 0.01
FLOAT64_EPS = float(np.finfo(np.float64).eps)
ELU_ALPHA = 1.0

# The output activation that sklearn pairs with each loss.
OUTPUT_ACTIVATION = {
    "squared_error": "identity",
    "poisson": "exp",
    "binary_log_loss": "logistic",
    "log_loss": "softmax",
}


def _f64(x):
    return np.asarray(x, dtype=np.float64)


# ----------------------------------------------------------------------------
# Hidden activations and their derivatives
# ----------------------------------------------------------------------------
def sigmoid(z):
    """1 / (1 + exp(-z)); exp may overflow to inf, which correctly gives 0."""
    z = _f64(z)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def normal_cdf(z):
    return 0.5 * (1.0 + erf(_f64(z) / np.sqrt(2.0)))


def normal_pdf(z):
    z = _f64(z)
    return np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)


def activation(name, z):
    """f(z) of a hidden activation, elementwise."""
    z = _f64(z)
    if name == "identity":
        return z.copy()
    if name == "logistic":
        return sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.where(z > 0, z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, LEAKY_SLOPE * z)
    if name == "elu":
        return np.where(z > 0, z, ELU_ALPHA * np.expm1(np.minimum(z, 0.0)))
    if name == "gelu":
        return z * normal_cdf(z)
    if name == "silu":
        return z * sigmoid(z)
    if name == "softplus":
        # log(1 + exp(z)), written as logaddexp(0, z) so that exp cannot overflow
        return np.logaddexp(0.0, z)
    raise ValueError(name)


def activation_derivative(name, z):
    """f'(z) of a hidden activation, elementwise (f'(0) = 0 for relu)."""
    z = _f64(z)
    if name == "identity":
        return np.ones_like(z)
    if name == "logistic":
        s = sigmoid(z)
        return s * (1.0 - s)
    if name == "tanh":
        return 1.0 - np.tanh(z) ** 2
    if name == "relu":
        return np.where(z > 0, 1.0, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, LEAKY_SLOPE)
    if name == "elu":
        return np.where(z > 0, 1.0, ELU_ALPHA * np.exp(np.minimum(z, 0.0)))
    if name == "gelu":
        return normal_cdf(z) + z * normal_pdf(z)
    if name == "silu":
        s = sigmoid(z)
        return s + z * s * (1.0 - s)
    if name == "softplus":
        return sigmoid(z)
    raise ValueError(name)


def bias_activation(Z, b, name):
    """The fused hidden-layer step: returns ``(Z + b, f(Z + b))``."""
    Zb = _f64(Z) + _f64(b)[None, :]
    return Zb, activation(name, Zb)


def activation_derivative_product(Z, delta, name):
    """Chain rule through a hidden activation: ``delta * f'(Z)``."""
    return _f64(delta) * activation_derivative(name, Z)


# ----------------------------------------------------------------------------
# Output activations, losses and the output delta
# ----------------------------------------------------------------------------
def output_activation(name, Z):
    """Output link applied row-wise: identity, exp, logistic or softmax."""
    Z = _f64(Z)
    if name == "identity":
        return Z.copy()
    if name == "exp":
        with np.errstate(over="ignore"):
            return np.exp(Z)
    if name == "logistic":
        return sigmoid(Z)
    if name == "softmax":
        shifted = Z - Z.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(name)


def _weighted_mean_over_samples(values, sw):
    """Column-wise mean of ``values`` (n, k) with sample weights ``sw`` (n,)."""
    if sw is None:
        sw = np.ones(values.shape[0])
    sw = _f64(sw)
    return (sw[:, None] * values).sum(axis=0) / sw.sum()


def loss(name, Y, A, sw=None, eps=FLOAT64_EPS):
    """sklearn 1.9's data loss (no penalty) of predictions/probabilities A.

    ``eps`` is the machine epsilon of the model's dtype; probabilities are
    clipped to ``[eps, 1 - eps]`` before the logarithms.
    """
    Y, A = _f64(Y), _f64(A)
    if name == "squared_error":
        return 0.5 * _weighted_mean_over_samples((Y - A) ** 2, sw).mean()
    if name == "poisson":
        y_log_y_over_a = np.zeros_like(Y)
        pos = Y > 0
        y_log_y_over_a[pos] = Y[pos] * np.log(Y[pos] / A[pos])
        per_entry = y_log_y_over_a - Y + A
        return _weighted_mean_over_samples(per_entry, sw).sum()
    P = np.clip(A, eps, 1.0 - eps)
    if name == "binary_log_loss":
        per_entry = Y * np.log(P) + (1.0 - Y) * np.log(1.0 - P)
        return -_weighted_mean_over_samples(per_entry, sw).sum()
    if name == "log_loss":
        per_entry = np.where(Y != 0, Y * np.log(P), 0.0)
        return -_weighted_mean_over_samples(per_entry, sw).sum()
    raise ValueError(name)


def output_delta(A, Y, sw=None):
    """dL/dZ of the output layer as sklearn backpropagates it: (A - Y) * sw."""
    D = _f64(A) - _f64(Y)
    if sw is not None:
        D = D * _f64(sw)[:, None]
    return D


# ----------------------------------------------------------------------------
# Parameters, forward and backward passes
# ----------------------------------------------------------------------------
def pack(coefs, intercepts):
    """Flat vector: every W_i row-major, then every b_i."""
    parts = [_f64(W).ravel() for W in coefs] + [_f64(b).ravel() for b in intercepts]
    return np.concatenate(parts)


def glorot_uniform(random_state, units, activation):
    """scikit-learn's initial weights: per layer, W then b from U(-r, r).

    ``r = sqrt(factor / (fan_in + fan_out))``, factor 2 for the logistic
    activation and 6 otherwise; ``random_state`` is advanced past the draws.
    Returns lists of float64 W_i and b_i.
    """
    factor = 2.0 if activation == "logistic" else 6.0
    coefs, intercepts = [], []
    for fan_in, fan_out in zip(units[:-1], units[1:], strict=True):
        bound = np.sqrt(factor / (fan_in + fan_out))
        coefs.append(random_state.uniform(-bound, bound, (fan_in, fan_out)))
        intercepts.append(random_state.uniform(-bound, bound, fan_out))
    return coefs, intercepts


def unpack(params, units):
    """Inverse of :func:`pack`: lists of (float64 copies of) W_i and b_i."""
    params = _f64(params)
    coefs, intercepts, pos = [], [], 0
    for fan_in, fan_out in zip(units[:-1], units[1:], strict=True):
        coefs.append(params[pos : pos + fan_in * fan_out].reshape(fan_in, fan_out))
        pos += fan_in * fan_out
    for fan_out in units[1:]:
        intercepts.append(params[pos : pos + fan_out].copy())
        pos += fan_out
    assert pos == params.size
    return coefs, intercepts


def dense(X):
    """X as a float64 dense array (sparse matrices are densified)."""
    if sp.issparse(X):
        X = X.toarray()
    return _f64(X)


def forward(X, coefs, intercepts, act, out):
    """Pre-activations Zs and activations As of every layer (output included)."""
    A = dense(X)
    Zs, As = [], []
    last = len(coefs) - 1
    for i, (W, b) in enumerate(zip(coefs, intercepts, strict=True)):
        Z = A @ _f64(W) + _f64(b)
        A = output_activation(out, Z) if i == last else activation(act, Z)
        Zs.append(Z)
        As.append(A)
    return Zs, As


def forward_dropout(X, coefs, intercepts, act, out, masks):
    """:func:`forward` with hidden layer ``i``'s activations times ``masks[i]``.

    ``masks[i]`` holds 0 for a dropped unit and ``1 / (1 - rate)`` for a kept
    one (inverted dropout); the output layer is never masked.
    """
    A = dense(X)
    Zs, As = [], []
    last = len(coefs) - 1
    for i, (W, b) in enumerate(zip(coefs, intercepts, strict=True)):
        Z = A @ _f64(W) + _f64(b)
        if i == last:
            A = output_activation(out, Z)
        else:
            A = activation(act, Z) * _f64(masks[i])
        Zs.append(Z)
        As.append(A)
    return Zs, As


def l2_penalty(coefs):
    """Sum of squares of every coefficient (intercepts excluded)."""
    return sum(float((_f64(W) ** 2).sum()) for W in coefs)


def loss_and_gradient(X, Y, sw, coefs, intercepts, act, loss_name, alpha, eps):
    """sklearn's batch loss (with penalty) and its backpropagated gradient.

    Returns
    -------
    loss : float
    coef_grads, intercept_grads : lists of ndarray
    """
    X = dense(X)
    n = X.shape[0]
    sw_sum = float(n) if sw is None else float(_f64(sw).sum())
    out = OUTPUT_ACTIVATION[loss_name]
    Zs, As = forward(X, coefs, intercepts, act, out)
    value = loss(loss_name, Y, As[-1], sw, eps)
    value += 0.5 * alpha * l2_penalty(coefs) / sw_sum
    inputs = [X] + As[:-1]
    D = output_delta(As[-1], Y, sw)
    coef_grads = [None] * len(coefs)
    intercept_grads = [None] * len(coefs)
    for i in range(len(coefs) - 1, -1, -1):
        coef_grads[i] = (inputs[i].T @ D + alpha * _f64(coefs[i])) / sw_sum
        intercept_grads[i] = D.sum(axis=0) / sw_sum
        if i > 0:
            D = activation_derivative_product(Zs[i - 1], D @ _f64(coefs[i]).T, act)
    return value, coef_grads, intercept_grads


def flat_loss_and_gradient(X, Y, sw, params, units, act, loss_name, alpha, eps):
    """:func:`loss_and_gradient` on a flat parameter vector."""
    coefs, intercepts = unpack(params, units)
    value, gc, gi = loss_and_gradient(
        X, Y, sw, coefs, intercepts, act, loss_name, alpha, eps
    )
    return value, pack(gc, gi)


# ----------------------------------------------------------------------------
# Optimizers (sklearn's update rules)
# ----------------------------------------------------------------------------
def sgd_step(params, grads, velocity, lr, momentum, nesterov):
    """v' = mu v - lr g; the step is v', or mu v' - lr g with Nesterov."""
    params, grads, velocity = _f64(params), _f64(grads), _f64(velocity)
    new_velocity = momentum * velocity - lr * grads
    step = momentum * new_velocity - lr * grads if nesterov else new_velocity
    return params + step, new_velocity


def adam_step(params, grads, m, v, t, lr, beta_1, beta_2, epsilon):
    """Adam step number ``t`` (1-based): returns new params, m and v."""
    params, grads, m, v = _f64(params), _f64(grads), _f64(m), _f64(v)
    m = beta_1 * m + (1.0 - beta_1) * grads
    v = beta_2 * v + (1.0 - beta_2) * grads**2
    lr_t = lr * np.sqrt(1.0 - beta_2**t) / (1.0 - beta_1**t)
    return params - lr_t * m / (np.sqrt(v) + epsilon), m, v


# ----------------------------------------------------------------------------
# Sparse products and a whole epoch
# ----------------------------------------------------------------------------
def csr_rows_dot(X, rows, W):
    """X[rows] @ W for a sparse X, through a dense copy."""
    return dense(X)[rows] @ _f64(W)


def csr_rows_transpose_dot(X, rows, D):
    """X[rows].T @ D for a sparse X, through a dense copy."""
    return dense(X)[rows].T @ _f64(D)


def epoch(X, Y, sw, order, batch_size, params, units, act, loss_name, alpha, eps, opt):
    """One epoch of mini-batch training, looping over the batches in Python.

    ``opt`` is a dict: ``solver`` ('sgd' or 'adam'), ``lr`` and either
    ``momentum``, ``nesterov``, ``velocity`` or ``beta_1``, ``beta_2``,
    ``epsilon``, ``m``, ``v``, ``t``. Its state entries are replaced by the
    updated ones.

    Returns
    -------
    loss : float
        Batch losses weighted by batch sizes, divided by the number of samples.
    params : ndarray
        The updated flat parameters.
    """
    X, Y = dense(X), _f64(Y)
    params = _f64(params).copy()
    n = len(order)
    total = 0.0
    for start in range(0, n, batch_size):
        rows = order[start : start + batch_size]
        sw_b = None if sw is None else _f64(sw)[rows]
        value, grads = flat_loss_and_gradient(
            X[rows], Y[rows], sw_b, params, units, act, loss_name, alpha, eps
        )
        total += value * len(rows)
        if opt["solver"] == "sgd":
            params, opt["velocity"] = sgd_step(
                params, grads, opt["velocity"], opt["lr"], opt["momentum"],
                opt["nesterov"],
            )  # fmt: skip
        else:
            opt["t"] += 1
            params, opt["m"], opt["v"] = adam_step(
                params, grads, opt["m"], opt["v"], opt["t"], opt["lr"],
                opt["beta_1"], opt["beta_2"], opt["epsilon"],
            )  # fmt: skip
    return total / n, params


def all_finite(values):
    """Whether no value is NaN or infinite."""
    return bool(np.all(np.isfinite(values)))


def one_hot_labels(y):
    """Sorted distinct labels and scikit-learn's one-hot rows (bool).

    Two classes give one column, whether the label is the second class.
    """
    classes, rank = np.unique(y, return_inverse=True)
    if len(classes) == 2:
        return classes, (rank == 1).reshape(-1, 1)
    return classes, np.eye(len(classes), dtype=bool)[rank]
