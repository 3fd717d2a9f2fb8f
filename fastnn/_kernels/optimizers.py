"""In-place optimizer updates over the flat parameter buffer.

Every update is one fused pass over ``params``, ``grads`` and the optimizer
state, all sharing the flat layout of :mod:`fastnn._kernels.layout`.

* SGD with momentum: ``v <- mu v - lr g``, then ``p <- p + v``; with Nesterov's
  momentum the step is ``mu v - lr g`` (using the new ``v``) instead. Without
  Nesterov, the epoch kernel can instead fold ``mu v - lr g`` into the
  backward pass's products (:mod:`fastnn._kernels.layers`) and finish with
  :func:`apply_velocity`, two BLAS ``axpy`` calls.
* Adam: ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g**2`` and
  ``p <- p - lr_t m / (sqrt(v) + eps)`` with the bias-corrected rate
  ``lr_t = lr sqrt(1 - b2**t) / (1 - b1**t)``.
"""

import math
from collections import namedtuple

import numpy as np
from numba import njit, types
from numba.extending import overload

from .._config import JIT, JIT_INLINE, JIT_INTERNAL, JIT_OVERLOAD
from .._lowlevel.blas import INT32_MAX, xaxpy

SGD, ADAM = 0, 1

# Positions in the float64 ``hyper`` array of an :class:`Optimizer`.
LR, MOMENTUM, NESTEROV, BETA_1, BETA_2, EPSILON = range(6)
N_HYPER = 6
# Length of the scratch array of scalars in the parameters' dtype (Adam's six).
N_COEFFS = 6

Optimizer = namedtuple("Optimizer", ["solver", "hyper", "state", "step"])
Optimizer.__doc__ = """An optimizer as the kernels see it.

solver : int
    ``SGD`` or ``ADAM``.
hyper : ndarray of shape (N_HYPER,), float64
    Hyper-parameters at the positions ``LR``, ``MOMENTUM``, ...
state : ndarray of shape (2, n_params)
    SGD: row 0 holds the velocities. Adam: rows hold m and v.
step : ndarray of shape (1,), int64, or ()
    Adam's time step, incremented in place; an SGD optimizer may pass ``()``,
    and kernels compiled for it then leave Adam's update out.
"""


@njit(**JIT)
def sgd_momentum_update(params, grads, velocity, lr, momentum, nesterov):
    """One SGD step with (Nesterov) momentum, in place.

    Parameters
    ----------
    params, grads, velocity : ndarray of shape (n_params,)
        Parameters (updated), gradients, and velocities (updated).
    lr : float
        Current learning rate.
    momentum : float
        Momentum coefficient ``mu``.
    nesterov : bool
        Whether to use Nesterov's momentum.
    """
    coeffs = np.array([lr, momentum, 0.0, 1.0], dtype=params.dtype)
    sgd_momentum_update_raw(params, grads, velocity, coeffs, nesterov, 0)


@njit(**JIT_INTERNAL)
def sgd_momentum_update_raw(params, raw, velocity, coeffs, nesterov, n_coef):
    """SGD step from the raw gradient sums, scaling them on the fly.

    The gradient is ``g = (raw + alpha * p) * inv_sw`` for the first
    ``n_coef`` entries (the coefficients) and ``g = raw * inv_sw`` for the
    intercepts, so scaling, penalty and update are one pass.

    Parameters
    ----------
    params, raw, velocity : ndarray of shape (n_params,)
        Parameters (updated), raw gradient sums, velocities (updated).
    coeffs : ndarray of shape (4,), dtype of params
        ``[lr, momentum, alpha, inv_sw]``.
    nesterov : bool
        Whether to use Nesterov's momentum.
    n_coef : int
        Number of coefficient entries at the start of the buffer.
    """
    lr, mu, alpha, inv = coeffs[0], coeffs[1], coeffs[2], coeffs[3]
    for j in range(params.shape[0]):
        g = raw[j] * inv
        if j < n_coef:
            g += alpha * inv * params[j]
        v = mu * velocity[j] - lr * g
        velocity[j] = v
        if nesterov:
            params[j] += mu * v - lr * g
        else:
            params[j] += v


@njit(**JIT)
def apply_velocity(params, velocity, decay, n_coef):
    """Finish a momentum step whose velocity holds ``mu v - lr / n * sums``.

    Adds the L2 term, ``v -= decay * W`` over the first ``n_coef`` entries
    (``decay = lr * alpha / n``), then takes the step ``p += v``; both are
    BLAS ``axpy`` calls, which OpenBLAS runs on its threads for large buffers.

    Parameters
    ----------
    params, velocity : ndarray of shape (n_params,)
        Parameters and velocities, both updated.
    decay : float
        Weight of the L2 term in the velocity.
    n_coef : int
        Number of coefficient entries at the start of the buffer.
    """
    n = params.shape[0]
    if velocity.shape[0] != n or not 0 <= n_coef <= n or n > INT32_MAX:
        raise ValueError("apply_velocity: buffer lengths do not match")
    if decay != 0 and n_coef > 0:
        xaxpy(n_coef, -decay, params, 1, velocity, 1)
    if n > 0:
        xaxpy(n, 1.0, velocity, 1, params, 1)


@njit(**JIT)
def adam_update(params, grads, m, v, lr, beta_1, beta_2, epsilon, t):
    """One Adam step at time step ``t`` (1-based), in place.

    Parameters
    ----------
    params, grads, m, v : ndarray of shape (n_params,)
        Parameters (updated), gradients, and first/second moments (updated).
    lr : float
        Base learning rate (``learning_rate_init``).
    beta_1, beta_2, epsilon : float
        Adam's decay rates and numerical-stability constant.
    t : int
        Number of the step being taken.
    """
    coeffs = np.array([lr, beta_1, beta_2, epsilon, 0.0, 1.0], dtype=params.dtype)
    adam_update_raw(params, grads, m, v, coeffs, t, 0)


@njit(**JIT_INTERNAL)
def adam_update_raw(params, raw, m, v, coeffs, t, n_coef):
    """Adam step from raw gradient sums (see :func:`sgd_momentum_update_raw`).

    Parameters
    ----------
    params, raw, m, v : ndarray of shape (n_params,)
        Parameters (updated), raw gradient sums, moments (updated).
    coeffs : ndarray of shape (N_COEFFS,), dtype of params
        ``[lr, beta_1, beta_2, epsilon, alpha, inv_sw]``; ``coeffs[0]`` is
        overwritten with the bias-corrected rate.
    t : int
        Number of the step being taken.
    n_coef : int
        Number of coefficient entries at the start of the buffer.
    """
    b1, b2 = float(coeffs[1]), float(coeffs[2])
    coeffs[0] = float(coeffs[0]) * math.sqrt(1.0 - b2**t) / (1.0 - b1**t)
    lr_t, beta_1, beta_2, eps = coeffs[0], coeffs[1], coeffs[2], coeffs[3]
    alpha, inv = coeffs[4], coeffs[5]
    one = inv / inv
    for j in range(params.shape[0]):
        g = raw[j] * inv
        if j < n_coef:
            g += alpha * inv * params[j]
        mj = beta_1 * m[j] + (one - beta_1) * g
        vj = beta_2 * v[j] + (one - beta_2) * (g * g)
        m[j] = mj
        v[j] = vj
        params[j] += -lr_t * mj / (math.sqrt(vj) + eps)


@njit(**JIT)
def optimizer_step(params, grads, optimizer):
    """Apply the update of ``optimizer`` to a finished gradient.

    Parameters
    ----------
    params, grads : ndarray of shape (n_params,)
        Parameters (updated) and their gradients.
    optimizer : Optimizer
        Solver code, hyper-parameters, state and step (state and step
        updated).
    """
    coeffs = np.empty(N_COEFFS, dtype=params.dtype)
    fused_optimizer_step(params, grads, optimizer, 0.0, 1.0, 0, coeffs)


@njit(**JIT_INLINE)
def fused_optimizer_step(params, raw, optimizer, alpha, inv_sw, n_coef, coeffs):
    """Scale raw gradient sums, add the L2 term and update, in one pass.

    Parameters
    ----------
    params, raw : ndarray of shape (n_params,)
        Parameters (updated) and the raw sums A^T D, sum(D).
    optimizer : Optimizer
        As in :func:`optimizer_step`.
    alpha : float
        L2 penalty.
    inv_sw : float
        1 / sum of the batch's sample weights.
    n_coef : int
        Number of coefficient entries at the start of the buffer.
    coeffs : ndarray of shape (N_COEFFS,), dtype of params
        Scratch space for the scalars in the parameters' dtype.
    """
    hyper, state = optimizer.hyper, optimizer.state
    if optimizer.solver == SGD:
        coeffs[0] = hyper[LR]
        coeffs[1] = hyper[MOMENTUM]
        coeffs[2] = alpha
        coeffs[3] = inv_sw
        sgd_momentum_update_raw(
            params, raw, state[0], coeffs, hyper[NESTEROV] != 0, n_coef
        )
    else:
        adam_step(params, raw, optimizer, alpha, inv_sw, n_coef, coeffs)


def adam_step(params, raw, optimizer, alpha, inv_sw, n_coef, coeffs):
    """The Adam branch of :func:`fused_optimizer_step` (jitted code only).

    For an optimizer whose ``step`` is ``()`` (an SGD optimizer, as the
    engine passes it) it compiles to nothing, so that kernels compiled for
    SGD leave Adam's update out.
    """


@overload(adam_step, jit_options=JIT_OVERLOAD, inline="always")
def overload_adam_step(params, raw, optimizer, alpha, inv_sw, n_coef, coeffs):
    """Adam's update, if the optimizer's type has a step counter."""
    step_type = optimizer.types[optimizer.fields.index("step")]
    if isinstance(step_type, types.BaseTuple) and len(step_type) == 0:
        return lambda params, raw, optimizer, alpha, inv_sw, n_coef, coeffs: None

    def impl(params, raw, optimizer, alpha, inv_sw, n_coef, coeffs):
        hyper, state, step = optimizer.hyper, optimizer.state, optimizer.step
        step[0] += 1
        coeffs[0] = hyper[LR]
        coeffs[1] = hyper[BETA_1]
        coeffs[2] = hyper[BETA_2]
        coeffs[3] = hyper[EPSILON]
        coeffs[4] = alpha
        coeffs[5] = inv_sw
        adam_update_raw(params, raw, state[0], state[1], coeffs, step[0], n_coef)

    return impl
