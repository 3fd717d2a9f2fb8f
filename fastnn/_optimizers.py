"""In-place optimizer updates over the flat parameter buffer.

Every update is one fused pass over ``params``, ``grads`` and the optimizer
state, all sharing the flat layout of :mod:`fastnn._network`.

* SGD with momentum: ``v <- mu v - lr g``, then ``p <- p + v``; with Nesterov's
  momentum the step is ``mu v - lr g`` (using the new ``v``) instead.
* Adam: ``m <- b1 m + (1 - b1) g``, ``v <- b2 v + (1 - b2) g**2`` and
  ``p <- p - lr_t m / (sqrt(v) + eps)`` with the bias-corrected rate
  ``lr_t = lr sqrt(1 - b2**t) / (1 - b1**t)``.
"""

import math

from numba import njit

from ._config import JIT

SGD, ADAM = 0, 1

# Positions in the float64 ``hyper`` array passed to the epoch kernel.
LR, MOMENTUM, NESTEROV, BETA_1, BETA_2, EPSILON = range(6)


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
    for j in range(params.shape[0]):
        v = momentum * velocity[j] - lr * grads[j]
        velocity[j] = v
        if nesterov:
            params[j] += momentum * v - lr * grads[j]
        else:
            params[j] += v


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
    lr_t = lr * math.sqrt(1.0 - beta_2**t) / (1.0 - beta_1**t)
    for j in range(params.shape[0]):
        g = grads[j]
        mj = beta_1 * m[j] + (1.0 - beta_1) * g
        vj = beta_2 * v[j] + (1.0 - beta_2) * (g * g)
        m[j] = mj
        v[j] = vj
        params[j] += -lr_t * mj / (math.sqrt(vj) + epsilon)


@njit(**JIT)
def optimizer_step(params, grads, state, solver, hyper, step):
    """Apply the update of ``solver`` (SGD or ADAM) in place.

    Parameters
    ----------
    params, grads : ndarray of shape (n_params,)
        Parameters (updated) and their gradients.
    state : ndarray of shape (2, n_params)
        SGD: row 0 holds the velocities. Adam: rows hold m and v.
    solver : int
        ``SGD`` or ``ADAM``.
    hyper : ndarray of shape (6,)
        ``[lr, momentum, nesterov, beta_1, beta_2, epsilon]``.
    step : ndarray of shape (1,), int64
        Adam's time step, incremented in place.
    """
    if solver == SGD:
        sgd_momentum_update(
            params, grads, state[0], hyper[LR], hyper[MOMENTUM], hyper[NESTEROV] != 0
        )
    else:
        step[0] += 1
        adam_update(
            params,
            grads,
            state[0],
            state[1],
            hyper[LR],
            hyper[BETA_1],
            hyper[BETA_2],
            hyper[EPSILON],
            step[0],
        )
