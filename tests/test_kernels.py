"""Every jitted kernel of fastnn against its plain-numpy twin in reference.py.

Each kernel runs in float32 and in float64 on small random shapes; the twins
always compute in float64 from the very same (possibly float32) inputs, so the
float32 tolerance measures float32 rounding only. Shapes include batches that
do not divide the sample count, single-sample batches, single outputs, sparse
CSR inputs (with empty rows, unsorted and duplicate column indices), sample
weights and the L2 penalty. The last section checks numerical stability for
logits of +-1e4.
"""

import math
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
import pytest
import reference as ref
import scipy.sparse as sp
import scipy_blas_numpy
from numba import njit

from fastnn._kernels import activations as fa
from fastnn._kernels import codes as fcodes
from fastnn._kernels import data as fdata
from fastnn._kernels import epoch as ft
from fastnn._kernels import layers as flay
from fastnn._kernels import layout as fnet
from fastnn._kernels import losses as fl
from fastnn._kernels import optimizers as fo
from fastnn._lowlevel import blas as fblas
from fastnn._lowlevel import prefetch as fp
from fastnn._lowlevel import products as fprod
from fastnn._lowlevel import summation as fsum
from fastnn._lowlevel import vecmath as fv

DTYPES = [np.float32, np.float64]
TOL = {np.float32: (1e-5, 1e-6), np.float64: (1e-12, 1e-13)}
ACTS = list(ref.HIDDEN_ACTIVATIONS)
LOSSES = ["squared_error", "poisson", "binary_log_loss", "log_loss"]
LOSS_CODE = {
    "squared_error": fl.SQUARED_ERROR,
    "poisson": fl.POISSON,
    "binary_log_loss": fl.BINARY_LOG_LOSS,
    "log_loss": fl.SOFTMAX_LOG_LOSS,
}
# (loss, number of outputs): single and multiple outputs, multilabel included.
OUTPUT_CASES = [
    ("squared_error", 1),
    ("squared_error", 3),
    ("poisson", 2),
    ("binary_log_loss", 1),
    ("binary_log_loss", 3),
    ("log_loss", 4),
]


def assert_close(actual, expected, dtype, scale=1.0):
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(
        np.asarray(actual, dtype=np.float64), expected, rtol=rtol, atol=atol * scale
    )


def eps_of(dtype):
    return float(np.finfo(dtype).eps)


def targets(rng, loss_name, n, k, dtype):
    if loss_name == "squared_error":
        Y = rng.normal(size=(n, k))
    elif loss_name == "poisson":
        Y = rng.poisson(1.5, size=(n, k)).astype(float)
    elif loss_name == "binary_log_loss":
        Y = rng.integers(0, 2, size=(n, k)).astype(float)
    else:
        Y = np.eye(k)[rng.integers(0, k, size=n)]
    return np.ascontiguousarray(Y, dtype=dtype)


def random_csr(rng, n, p, dtype, empty_row=True):
    """CSR matrix with ~40% density; row 1 is empty when ``empty_row``."""
    X = rng.normal(size=(n, p)) * (rng.random((n, p)) < 0.4)
    if empty_row and n > 1:
        X[1] = 0.0
    return sp.csr_matrix(X.astype(dtype))


def csr_arrays(X):
    return (X.data, X.indices.astype(np.int64), X.indptr.astype(np.int64))


def empty_csr(dtype):
    return (np.empty(0, dtype), np.empty(0, np.int64), np.empty(0, np.int64))


def random_params(rng, units, dtype, scale=0.7):
    _, size = fnet.parameter_layout(units)
    return (scale * rng.normal(size=size)).astype(dtype)


class Net:
    """Layout arrays for a network with the given units (int64 array)."""

    def __init__(self, units, n_rows, dtype, backward=True):
        self.units = np.asarray(units, dtype=np.int64)
        self.offsets, self.size = fnet.parameter_layout(self.units)
        self.ws_offsets, ws_size = fnet.workspace_layout(self.units, n_rows, backward)
        self.ws = np.full(ws_size, np.nan, dtype=dtype)

    def kernel(self, params, grads):
        """The kernels' Net value over ``params``, ``grads`` and this layout."""
        return fnet.Net(
            params, grads, self.offsets, self.units, self.ws, self.ws_offsets
        )

    def buffer(self, kind, layer, n_rows):
        start = self.ws_offsets[kind, layer]
        size = n_rows * self.units[layer + 1]
        return self.ws[start : start + size].reshape(n_rows, self.units[layer + 1])


# ----------------------------------------------------------------------------
# Hidden activations
# ----------------------------------------------------------------------------
Z_GRID = np.concatenate([np.linspace(-8, 8, 33), [-0.3, 1e-3, 0.0, 2.5]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_scalar_activation_and_derivative(act, dtype):
    code = fa.ACTIVATION_CODES[act]
    z = Z_GRID.astype(dtype)
    f = np.array([fa.activation(dtype(v), code) for v in z])
    assert_close(f, ref.activation(act, z), dtype)
    a = ref.activation(act, z).astype(dtype)
    fp = np.array(
        [
            fa.activation_prime(dtype(v), dtype(w), code)
            for v, w in zip(z, a, strict=True)
        ]
    )
    assert_close(fp, ref.activation_derivative(act, z), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("aliased", [False, True], ids=["separate", "in_place"])
def test_inplace_bias_activation(act, dtype, aliased):
    rng = np.random.default_rng(1)
    Z = (2 * rng.normal(size=(7, 5))).astype(dtype)
    b = rng.normal(size=5).astype(dtype)
    Z_expected, A_expected = ref.bias_activation(Z, b, act)
    A = Z if aliased else np.full_like(Z, np.nan)
    fa.inplace_bias_activation(Z, b, A, fa.ACTIVATION_CODES[act])
    assert_close(A, A_expected, dtype)
    if not aliased:
        assert_close(Z, Z_expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_inplace_activation_derivative(act, dtype):
    rng = np.random.default_rng(2)
    Z = (2 * rng.normal(size=(6, 4))).astype(dtype)
    Z[0, :2] = 0.0  # relu-like derivatives at exactly 0 follow f'(0) = f'(0-)
    A = ref.activation(act, Z).astype(dtype)
    delta = rng.normal(size=Z.shape).astype(dtype)
    expected = ref.activation_derivative_product(Z, delta, act)
    fa.inplace_activation_derivative(Z, A, delta, fa.ACTIVATION_CODES[act])
    assert_close(delta, expected, dtype)


@njit
def bias_activation_by(Z, b, A, code):
    fa.bias_activation(Z, b, A, code)


@njit
def activation_derivative_by(Z, A, delta, code):
    fa.activation_derivative(Z, A, delta, code)


@njit
def code_value_of(code):
    return fcodes.code_value(code)


@pytest.mark.parametrize("act", [*ACTS, "library_tanh"])
def test_static_codes_compile_the_same_arithmetic(act):
    """A static code picks the activation at compile time, with the bits of
    the run-time code, and both match the numpy twin."""
    if act == "library_tanh":
        code, act = fa.LIBRARY_TANH, "tanh"
    else:
        code = fa.ACTIVATION_CODES[act]
    static = fcodes.static_code(code)
    assert fcodes.static_value(numba.typeof(static)) == code
    assert fcodes.static_value(numba.typeof(code)) is None
    assert code_value_of(static) == code_value_of(code) == code
    rng = np.random.default_rng(5)
    Z = (2 * rng.normal(size=(6, 5))).astype(np.float32)
    b = rng.normal(size=5).astype(np.float32)
    delta = rng.normal(size=Z.shape).astype(np.float32)
    results = []
    for c in (code, static):
        Zc, A, Dc = Z.copy(), np.full_like(Z, np.nan), delta.copy()
        bias_activation_by(Zc, b, A, c)
        activation_derivative_by(Zc, A, Dc, c)
        results.append((Zc, A, Dc))
    for runtime, compiled in zip(*results, strict=True):
        np.testing.assert_array_equal(runtime, compiled)
    Z_expected, A_expected = ref.bias_activation(Z, b, act)
    assert_close(results[1][1], A_expected, np.float32)
    expected = ref.activation_derivative_product(Z_expected, delta, act)
    assert_close(results[1][2], expected, np.float32)


# ----------------------------------------------------------------------------
# The vectorisable exponential
# ----------------------------------------------------------------------------
@njit
def exp_each(x, out):
    for j in range(x.shape[0]):
        out[j] = fv.vector_exp(x[j])


def exp_inputs(dtype):
    """Random arguments over the whole range, and the edge cases."""
    rng = np.random.default_rng(8)
    limit = 800.0 if dtype == np.float64 else 110.0
    edges = [0.0, -0.0, 1e-30, -1e-30, 0.5 * np.log(2), -0.5 * np.log(2)]
    edges += [88.72, 88.73, -87.33, -103.9, -104.0, 709.78, 709.79, -745.1]
    edges += [-745.2, 1e30, -1e30, np.inf, -np.inf, np.nan]
    x = np.concatenate(
        [rng.uniform(-limit, limit, 40000), rng.uniform(-1, 1, 10000), edges]
    )
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_vector_exp_within_one_ulp_of_numpy(dtype):
    """Against float64 ``numpy.exp`` rounded to the dtype: at most 1 unit in
    the last place for normal results and for subnormal ones, and exact
    0, inf, NaN and exp(0) = 1."""
    x = exp_inputs(dtype)
    out = np.full_like(x, 7.0)
    exp_each(x, out)
    with np.errstate(over="ignore", under="ignore"):
        expected = np.exp(x.astype(np.float64)).astype(dtype)
    exact = ~np.isfinite(expected) | (expected == 0) | (x == 0)
    np.testing.assert_array_equal(out[exact], expected[exact])
    step = np.spacing(expected[~exact]).astype(np.float64)
    error = np.abs(out[~exact].astype(np.float64) - expected[~exact]) / step
    assert error.max() <= 1.0
    assert np.median(error) == 0.0
    assert out.dtype == dtype


def test_vector_exp_loop_is_simd_without_calls():
    """The loop over the exponential compiles to vector code with no call
    into the C library's ``exp``."""
    for dtype, vector in [(np.float32, "x float>"), (np.float64, "x double>")]:
        x = np.zeros(4, dtype)
        exp_each(x, np.empty_like(x))
        ir = exp_each.inspect_llvm((numba.typeof(x), numba.typeof(x)))
        assert vector in ir
        assert "@llvm.exp" not in ir and "@exp" not in ir and "@expf" not in ir


@njit
def tanh_each(x, out):
    for j in range(x.shape[0]):
        out[j] = fv.vector_tanh(x[j])


def tanh_inputs(dtype):
    """Random arguments over the range where tanh is not yet +-1, tiny and
    huge ones, and the edge cases."""
    rng = np.random.default_rng(12)
    tiny = 10.0 ** rng.uniform(-40, 0, 20000) * rng.choice([-1.0, 1.0], 20000)
    edges = [0.0, -0.0, 1e-45, 0.3466, -0.3466, 9.01, 19.07, 1e30, -1e30]
    edges += [np.inf, -np.inf, np.nan]
    x = np.concatenate([rng.uniform(-20, 20, 40000), tiny, edges])
    return x.astype(dtype)


@pytest.mark.parametrize("dtype,max_ulp", [(np.float32, 2.0), (np.float64, 3.0)])
def test_vector_tanh_within_a_few_ulp_of_numpy(dtype, max_ulp):
    """Against float64 numpy's tanh rounded to the dtype: within 2 units in
    the last place in float32 (most results exact) and 3 in float64, and
    exact signed zeros, +-1 and NaN."""
    x = tanh_inputs(dtype)
    out = np.full_like(x, 7.0)
    tanh_each(x, out)
    expected = np.tanh(x.astype(np.float64)).astype(dtype)
    exact = ~np.isfinite(x) | (expected == 0)
    np.testing.assert_array_equal(out[exact], expected[exact])
    assert np.array_equal(np.signbit(out[exact]), np.signbit(expected[exact]))
    step = np.spacing(np.abs(expected[~exact])).astype(np.float64)
    error = np.abs(out[~exact].astype(np.float64) - expected[~exact]) / step
    assert error.max() <= max_ulp
    if dtype == np.float32:
        assert np.median(error) == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_library_tanh_is_the_c_library(dtype):
    """The L-BFGS objective's tanh (LIBRARY_TANH) is the C library's: bit for
    bit ``math.tanh`` in float64, ``tanhf`` (within 2 units in the last place
    of the rounded float64 value) in float32; its derivative is tanh's."""
    x = tanh_inputs(dtype)[:2000].reshape(40, 50)
    x = np.where(np.isfinite(x), x, 0.5).astype(dtype)
    A = np.empty_like(x)
    fa.inplace_bias_activation(x.copy(), np.zeros(50, dtype), A, fa.LIBRARY_TANH)
    expected = np.vectorize(math.tanh)(x.astype(np.float64)).astype(dtype)
    if dtype == np.float64:
        np.testing.assert_array_equal(A, expected)
    else:
        np.testing.assert_array_max_ulp(A, expected, maxulp=2)
    delta = np.ones_like(x)
    expected = np.ones_like(x)
    fa.inplace_activation_derivative(x, A, delta, fa.LIBRARY_TANH)
    fa.inplace_activation_derivative(x, A, expected, fa.TANH)
    np.testing.assert_array_equal(delta, expected)


def test_float64_logistic_exp_is_the_c_library():
    """float64 keeps the C library's exponential in the logistic, so float64
    fits keep scikit-learn's numbers."""
    assert fv.float32_fast_exp(0.7) == math.exp(0.7)


def test_tanh_loops_are_simd_without_calls():
    """The tanh loop compiles to vector code with no call into the C
    library's ``tanh`` or ``exp``, in both precisions."""
    for dtype, vector in [(np.float32, "x float>"), (np.float64, "x double>")]:
        x = np.zeros(4, dtype)
        tanh_each(x, np.empty_like(x))
        ir = tanh_each.inspect_llvm((numba.typeof(x), numba.typeof(x)))
        assert vector in ir
        for name in ("@tanh", "@tanhf", "@exp", "@expf"):
            assert name + "(" not in ir


# ----------------------------------------------------------------------------
# Output layer: activations, losses and deltas
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_inplace_add_bias(dtype):
    rng = np.random.default_rng(9)
    Z = rng.normal(size=(5, 3)).astype(dtype)
    b = rng.normal(size=3).astype(dtype)
    expected = Z.astype(np.float64) + b
    flay.inplace_add_bias(Z, b)
    assert_close(Z, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss_name,k", OUTPUT_CASES)
def test_inplace_output_activation(loss_name, k, dtype):
    rng = np.random.default_rng(3)
    Z = (2 * rng.normal(size=(9, k))).astype(dtype)
    b = rng.normal(size=k).astype(dtype)
    expected = ref.output_activation(ref.OUTPUT_ACTIVATION[loss_name], Z + b)
    flay.inplace_add_bias(Z, b)
    fl.inplace_output_activation(Z, LOSS_CODE[loss_name])
    assert_close(Z, expected, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("aliased", [False, True], ids=["separate", "in-place"])
def test_shifted_exp_rows(aliased, dtype):
    """Row-max shift and exponentials, including logits of +-1e4."""
    rng = np.random.default_rng(5)
    Z = (3 * rng.normal(size=(7, 4))).astype(dtype)
    Z[2] = [1e4, -1e4, 0.0, 1e4 - 1.0]
    Z64 = Z.astype(np.float64)
    shifted_ref = Z64 - Z64.max(axis=1, keepdims=True)
    if aliased:
        expd = Z
        fl.shifted_exp_rows(Z, Z, Z)
    else:
        shifted, expd = np.empty_like(Z), np.empty_like(Z)
        fl.shifted_exp_rows(Z, shifted, expd)
        assert_close(shifted, shifted_ref, dtype)
    assert_close(expd, np.exp(shifted_ref), dtype)
    assert np.all(expd.max(axis=1) == 1)


def run_output_loss(Z, b, Y, rows, sw, loss_name):
    """Call output_loss_and_delta on copies; returns (loss, Z+b, A, delta)."""
    Z = Z.copy()
    A = np.full_like(Z, np.nan)
    D = np.full_like(Z, np.nan)
    sw_arg = np.empty(0, Z.dtype) if sw is None else sw
    sw_sum = rows.shape[0] if sw is None else float(sw[rows].astype(float).sum())
    flay.inplace_add_bias(Z, b)  # the forward pass's job
    loss = fl.output_loss_and_delta(
        Z, A, D, Y, rows, sw_arg, LOSS_CODE[loss_name], eps_of(Z.dtype), sw_sum
    )
    return loss, Z, A, D


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("loss_name,k", OUTPUT_CASES)
def test_output_loss_and_delta(loss_name, k, weighted, dtype):
    rng = np.random.default_rng(4)
    n_all, nb = 11, 6
    Y = targets(rng, loss_name, n_all, k, dtype)
    sw = rng.uniform(0.2, 2.0, n_all).astype(dtype) if weighted else None
    rows = rng.permutation(n_all)[:nb].astype(np.int64)
    Z = (1.5 * rng.normal(size=(nb, k))).astype(dtype)
    b = rng.normal(size=k).astype(dtype)
    loss, Zb, A, D = run_output_loss(Z, b, Y, rows, sw, loss_name)

    A_ref = ref.output_activation(ref.OUTPUT_ACTIVATION[loss_name], Z + b)
    sw_b = None if sw is None else sw[rows]
    loss_ref = ref.loss(loss_name, Y[rows], A_ref, sw_b, eps_of(dtype))
    assert_close(loss, loss_ref, dtype)
    assert_close(Zb, Z.astype(np.float64) + b, dtype)
    assert_close(A, A_ref, dtype)
    assert_close(D, ref.output_delta(A_ref, Y[rows], sw_b), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_losses_clip_probabilities_like_sklearn(dtype):
    # Saturated logits: the probability is clipped to [eps, 1 - eps], so a
    # confidently wrong sample costs -log(eps) and a right one -log(1 - eps).
    Z = np.array([[60.0], [-60.0]], dtype=dtype)
    Y = np.array([[0.0], [0.0]], dtype=dtype)
    rows = np.arange(2, dtype=np.int64)
    loss, *_ = run_output_loss(Z, np.zeros(1, dtype), Y, rows, None, "binary_log_loss")
    eps = eps_of(dtype)
    assert_close(2 * loss, -np.log(eps) - np.log1p(-eps), dtype)
    A = ref.output_activation("logistic", Z)
    assert_close(loss, ref.loss("binary_log_loss", Y, A, None, eps), dtype)


# ----------------------------------------------------------------------------
# Layout, products and gradient pieces
# ----------------------------------------------------------------------------
def test_parameter_layout_is_sklearn_pack_order():
    units = [4, 5, 3, 2]
    _, size = fnet.parameter_layout(units)
    params = np.arange(size, dtype=np.float64)
    coefs, intercepts = fnet.layer_views(params, units)
    assert [W.shape for W in coefs] == [(4, 5), (5, 3), (3, 2)]
    assert [b.shape for b in intercepts] == [(5,), (3,), (2,)]
    np.testing.assert_array_equal(ref.pack(coefs, intercepts), params)
    assert all(np.shares_memory(a, params) for a in coefs + intercepts)


def test_workspace_regions_are_disjoint_and_fit():
    units, n_rows = [4, 5, 3, 2], 7
    offsets, size = fnet.workspace_layout(units, n_rows)
    assert offsets.shape == (4, len(units) - 1)
    regions = [
        (offsets[kind, i], offsets[kind, i] + n_rows * units[i + 1])
        for kind in range(3)
        for i in range(len(units) - 1)
    ]
    # W_i^T blocks for every layer but the first.
    regions += [
        (offsets[3, i], offsets[3, i] + units[i] * units[i + 1])
        for i in range(1, len(units) - 1)
    ]
    regions.sort()
    assert regions[0][0] == 0 and regions[-1][1] == size
    assert all(a[1] <= b[0] for a, b in zip(regions, regions[1:], strict=False))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "nb,fan_in,fan_out", [(32, 64, 32), (7, 5, 1), (100, 101, 100)]
)
def test_delta_through_weights(nb, fan_in, fan_out, dtype):
    """``D @ W.T``, through the transposed copy for small products (the first
    two shapes) and through a transposed view for the last (1.01e6
    multiply-adds, over ``SMALL_PRODUCT``)."""
    rng = np.random.default_rng(10)
    D = rng.normal(size=(nb, fan_out)).astype(dtype)
    W = rng.normal(size=(fan_in, fan_out)).astype(dtype)
    WT = np.full((fan_out, fan_in), np.nan, dtype)
    out = np.full((nb, fan_in), np.nan, dtype)
    fprod.delta_through_weights(D, W, WT, out)
    expected = D.astype(np.float64) @ W.astype(np.float64).T
    assert_close(out, expected, dtype, scale=np.sqrt(fan_out))
    small = nb * fan_in * fan_out <= fprod.SMALL_PRODUCT
    assert small == (nb < 100)
    if small:
        np.testing.assert_array_equal(WT, W.T)
    else:
        assert np.isnan(WT).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ["logistic", "relu"])
def test_glorot_uniform_draws_like_sklearn(act, dtype):
    units = [4, 5, 2]
    params = fnet.glorot_uniform_params(units, act, np.random.RandomState(0), dtype)
    assert params.dtype == dtype
    rs = np.random.RandomState(0)
    coefs, intercepts = ref.glorot_uniform(rs, units, act)
    # The same bits as scikit-learn's draws, and the stream left where it is.
    np.testing.assert_array_equal(params, ref.pack(coefs, intercepts).astype(dtype))
    rest = np.random.RandomState(0)
    fnet.glorot_uniform_params(units, act, rest, dtype)
    np.testing.assert_array_equal(rest.uniform(size=5), rs.uniform(size=5))


@pytest.mark.parametrize("dtype", DTYPES)
def test_csr_products(dtype):
    rng = np.random.default_rng(5)
    X = random_csr(rng, 9, 6, dtype)
    # A hand-built row with unsorted and duplicated column indices.
    data = np.concatenate([X.data, np.array([1.5, -0.5, 2.0], dtype)])
    indices = np.concatenate([X.indices, [4, 0, 4]])
    indptr = np.concatenate([X.indptr, [X.indptr[-1] + 3]])
    X = sp.csr_matrix((data, indices, indptr), shape=(10, 6))
    rows = np.array([9, 1, 3, 3, 0, 7], dtype=np.int64)
    W = rng.normal(size=(6, 4)).astype(dtype)
    out = np.full((6, 4), np.nan, dtype)
    fprod.csr_rows_dot(*csr_arrays(X), rows, W, out)
    assert_close(out, ref.csr_rows_dot(X, rows, W), dtype)
    D = rng.normal(size=(6, 4)).astype(dtype)
    outT = np.full((6, 4), np.nan, dtype)
    fprod.csr_rows_transpose_dot(*csr_arrays(X), rows, D, outT, 1.0, 0.0)
    product = ref.csr_rows_transpose_dot(X, rows, D)
    assert_close(outT, product, dtype)
    # Accumulating, as into a velocity: out = factor * product + keep * out.
    old = outT.astype(np.float64)
    fprod.csr_rows_transpose_dot(*csr_arrays(X), rows, D, outT, -0.25, 0.9)
    assert_close(outT, -0.25 * product + 0.9 * old, dtype)


def one_layer_net(W, gW, gb):
    """A one-layer kernel Net whose weights are W and whose gradient buffer
    holds gW and gb; returns the Net and views of gW and gb in its buffer."""
    units = np.array(W.shape, dtype=np.int64)
    offsets, size = fnet.parameter_layout(units)
    params, grads = np.zeros(size, W.dtype), np.zeros(size, W.dtype)
    fnet.layer_views(params, units)[0][0][...] = W
    gcoefs, gintercepts = fnet.layer_views(grads, units)
    gcoefs[0][...], gintercepts[0][...] = gW, gb
    ws_offsets, _ = fnet.workspace_layout(units, 0)
    net = fnet.Net(params, grads, offsets, units, np.empty(0, W.dtype), ws_offsets)
    return net, gcoefs[0], gintercepts[0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [True, False], ids=["scaled", "raw"])
def test_bias_gradient_and_finish_gradient(scale, dtype):
    rng = np.random.default_rng(6)
    gW = rng.normal(size=(4, 3)).astype(dtype)
    W = rng.normal(size=(4, 3)).astype(dtype)
    D = rng.normal(size=(5, 3)).astype(dtype)
    net, gW, gb = one_layer_net(W, gW, np.full(3, np.nan, dtype))
    raw_gW, raw_gb = gW.astype(np.float64), D.astype(np.float64).sum(axis=0)
    flay.bias_gradient(gb, D, 1.0, 0.0)
    if scale:
        flay.finish_gradient(net, 0.3, 2.5)
    if scale:  # sklearn's (A^T D + alpha W) / sw_sum and sum(D) / sw_sum
        assert_close(gW, (raw_gW + 0.3 * W) / 2.5, dtype)
        assert_close(gb, raw_gb / 2.5, dtype)
    else:  # raw sums, left for the fused optimizer step
        assert_close(gW, raw_gW, dtype)
        assert_close(gb, raw_gb, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bias_gradient_into_velocity(dtype):
    rng = np.random.default_rng(16)
    D = rng.normal(size=(5, 3)).astype(dtype)
    gW = rng.normal(size=(4, 3)).astype(dtype)
    gb = rng.normal(size=3).astype(dtype)
    old_gW, old_gb = gW.copy(), gb.astype(np.float64)
    flay.bias_gradient(gb, D, -0.04, 0.9)
    np.testing.assert_array_equal(gW, old_gW)  # the product's job, not this one's
    assert_close(gb, -0.04 * D.astype(np.float64).sum(axis=0) + 0.9 * old_gb, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape",
    [(32, 54, 64), (128, 784, 256), (7, 1, 5), (0, 3, 4), (23, 7, 1), (23, 1, 7),
     (23, 1, 1)],
)  # fmt: skip
def test_gemm_transposed_left(shape, dtype):
    n_rows, p, q = shape
    rng = np.random.default_rng(17)
    A = rng.normal(size=(n_rows, p)).astype(dtype)
    D = rng.normal(size=(n_rows, q)).astype(dtype)
    C = rng.normal(size=(p, q)).astype(dtype)
    product = A.astype(np.float64).T @ D.astype(np.float64)
    expected = -0.3 * product + 0.9 * C.astype(np.float64)
    # A dot product's rounding error is bounded by a multiple of sum |a_i b_i|.
    bound = max(1.0, float((np.abs(A).T @ np.abs(D)).max(initial=0.0)))
    fblas.gemm_transposed_left(A, D, C, -0.3, 0.9)
    assert_close(C, expected, dtype, scale=bound)
    C[...] = np.nan  # keep == 0 overwrites without reading, as BLAS does
    fblas.gemm_transposed_left(A, D, C, 1.0, 0.0)
    assert_close(C, product, dtype, scale=bound)


@pytest.mark.parametrize("shape", [(23, 7, 1), (23, 1, 7), (23, 1, 1), (40, 6, 5)])
def test_gemm_transposed_left_takes_numpys_blas_routine(shape):
    """Bit for bit NumPy's ``A.T @ D`` (its routine by shape) on SciPy's BLAS."""
    n_rows, p, q = shape
    rng = np.random.default_rng(18)
    A, D = rng.normal(size=(n_rows, p)), rng.normal(size=(n_rows, q))
    C = np.full((p, q), np.nan)
    fblas.gemm_transposed_left(A, D, C, 1.0, 0.0)
    np.testing.assert_array_equal(C, scipy_blas_numpy.matmul(A.T, D))


@njit
def numba_logistic(z):
    out = np.empty_like(z)
    for i in range(z.shape[0]):
        out[i] = fa.logistic(z[i])
    return out


def test_float64_logistic_is_scipys_expit():
    from scipy.special import expit

    z = np.random.default_rng(20).normal(scale=8.0, size=20000)
    z = np.concatenate([z, [-800.0, -50.0, 0.0, 50.0, 800.0, np.inf, -np.inf]])
    np.testing.assert_array_equal(numba_logistic(z), expit(z))


@njit
def numba_pairwise_sum(values):
    return fsum.pairwise_sum(values)


@pytest.mark.parametrize(
    "n", [0, 1, 7, 8, 9, 23, 127, 128, 129, 136, 1000, 4097, 70001]
)  # fmt: skip
def test_pairwise_sum_is_numpys_sum(n):
    values = np.random.default_rng(n).normal(size=n)
    assert numba_pairwise_sum(values) == values.sum()
    assert numba_pairwise_sum(values) == values[:, None].sum(axis=0)[0]


@njit
def numba_dot(A, B, out):
    np.dot(A, B, out)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("transpose_b", [False, True], ids=["B", "B.T"])
@pytest.mark.parametrize(
    "m,k,n",
    [(5, 7, 3), (1, 7, 3), (5, 7, 1), (1, 7, 1), (0, 7, 3), (5, 0, 3), (40, 30, 20)],
)
def test_matmul_is_numbas_np_dot(m, k, n, transpose_b, dtype):
    rng = np.random.default_rng(21)
    A = rng.normal(size=(m, k)).astype(dtype)
    B = rng.normal(size=(n, k) if transpose_b else (k, n)).astype(dtype)
    expected = np.full((m, n), np.nan, dtype)
    numba_dot(A, B.T if transpose_b else B, expected)
    out = np.full((m, n), np.nan, dtype)
    fblas.matmul(A, B, out, np.bool_(transpose_b))
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_blas_calls_check_shapes(dtype):
    A, D = np.ones((3, 2), dtype), np.ones((4, 5), dtype)
    for transpose_b in (fblas.NOT_TRANSPOSED, fblas.TRANSPOSED):
        with pytest.raises(ValueError, match="shapes do not match"):
            fblas.matmul(A, D, np.ones((3, 5), dtype), transpose_b)
    with pytest.raises(ValueError, match="shapes do not match"):
        fblas.gemm_transposed_left(A, D, np.ones((2, 5), dtype), 1.0, 0.0)
    with pytest.raises(ValueError, match="shapes do not match"):
        fblas.gemm_transposed_left(A, A, np.ones((2, 3), dtype), 1.0, 0.0)
    # Only C-contiguous arrays of one float dtype reach BLAS: the others do
    # not compile, rather than being read with the wrong strides.
    with pytest.raises(numba.core.errors.TypingError):
        fblas.gemm_transposed_left(A.T, A.T, np.ones((3, 3), dtype), 1.0, 0.0)
    with pytest.raises(numba.core.errors.TypingError):
        fblas.gemm_transposed_left(A, A.astype(np.int64), np.ones((2, 2)), 1.0, 0.0)
    with pytest.raises(ValueError, match="lengths do not match"):
        fo.apply_velocity(np.ones(3, dtype), np.ones(4, dtype), 0.0, 2)
    with pytest.raises(ValueError, match="lengths do not match"):
        fo.apply_velocity(np.ones(3, dtype), np.ones(3, dtype), 0.0, 4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_apply_velocity(alpha, dtype):
    rng = np.random.default_rng(18)
    params = rng.normal(size=20).astype(dtype)
    velocity = rng.normal(size=20).astype(dtype)
    p64, v64 = params.astype(np.float64), velocity.astype(np.float64)
    fo.apply_velocity(params, velocity, 0.01 * alpha / 4, 12)
    v64[:12] -= 0.01 * alpha / 4 * p64[:12]  # the L2 term, coefficients only
    assert_close(velocity, v64, dtype)
    assert_close(params, p64 + v64, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gather_rows_and_l2_penalty(dtype):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(8, 3)).astype(dtype)
    rows = np.array([5, 0, 5, 7], dtype=np.int64)
    out = np.full((6, 3), np.nan, dtype)
    fp.gather_rows(X, rows, out)
    np.testing.assert_array_equal(out[:4], X[rows])
    net = Net([3, 4, 2], 1, dtype)
    params = random_params(rng, net.units, dtype)
    coefs, _ = ref.unpack(params, net.units)
    penalty = flay.l2_penalty(net.kernel(params, np.empty(0, dtype)))
    assert_close(penalty, ref.l2_penalty(coefs), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_cols", [1, 7, 16, 54, 100])
def test_prefetch_rows_is_a_pure_hint(n_cols, dtype):
    """Prefetching any rows, including the first, the last and none, changes
    nothing."""
    rng = np.random.default_rng(3)
    A = rng.normal(size=(9, n_cols)).astype(dtype)
    before = A.copy()
    for rows in ([0, 8, 4], [8], []):
        fp.prefetch_rows(A, np.array(rows, dtype=np.int64))
    np.testing.assert_array_equal(A, before)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_cols", [0, 1, 7, 16, 54, 100, 200])
def test_touch_rows_only_reads(n_cols, dtype):
    """Touching any rows, including the first, the last and none, changes
    nothing; indices outside the array are skipped, not read."""
    rng = np.random.default_rng(4)
    A = rng.normal(size=(9, n_cols)).astype(dtype)
    before = A.copy()
    for rows in ([0, 8, 4], [8], [], [-1, 9, 10**12, -(10**12)]):
        fp.touch_rows(A, np.array(rows, dtype=np.int64))
    np.testing.assert_array_equal(A, before)


def test_touch_element_is_a_load_the_compiler_keeps():
    """The loaded value is unused, yet the load survives optimisation: it
    feeds an empty ``asm`` statement with side effects."""
    from numba import njit
    from numba.core.errors import TypingError

    @njit
    def touch(a, i):
        fp.touch_element(a, i)

    A = np.ones((4, 4))
    touch(A, 15)
    ir = touch.inspect_llvm(touch.signatures[0])
    assert "load i8" in ir
    assert "asm sideeffect" in ir
    with pytest.raises(TypingError):
        touch(A[:, ::2], 0)


def test_prefetch_element_lowers_to_a_prefetch_instruction():
    from numba import njit
    from numba.core.errors import TypingError

    @njit
    def hint(a, i):
        fp.prefetch_element(a, i)

    A = np.ones((4, 4))
    hint(A, 15)
    assert "prefetch" in hint.inspect_asm(hint.signatures[0])
    with pytest.raises(TypingError):
        hint(A[:, ::2], 0)


# ----------------------------------------------------------------------------
# Forward pass, batch loss and gradient
# ----------------------------------------------------------------------------
def kernel_inputs(X, rows, sparse, dtype):
    """The Batch of ``rows`` as the engine hands it to the kernels."""
    if sparse:
        Xs = sp.csr_matrix(X)
        return fnet.Batch(np.empty((0, X.shape[1]), dtype), csr_arrays(Xs), True, rows)
    return fnet.Batch(np.ascontiguousarray(X[rows]), empty_csr(dtype), False, rows)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("act", ACTS)
def test_forward(act, sparse, dtype):
    rng = np.random.default_rng(8)
    units = [6, 5, 4, 3]
    X = random_csr(rng, 10, 6, dtype).toarray()
    rows = np.array([2, 9, 1, 4, 4, 0, 7], dtype=np.int64)
    net = Net(units, len(rows), dtype)
    params = random_params(rng, net.units, dtype)
    batch = kernel_inputs(X, rows, sparse, dtype)
    code = fa.ACTIVATION_CODES[act]
    flay.forward(net.kernel(params, np.empty(0, dtype)), batch, code)
    coefs, intercepts = ref.unpack(params, units)
    Zs, As = ref.forward(X[rows], coefs, intercepts, act, "identity")
    for i in range(2):
        assert_close(net.buffer(0, i, len(rows)), Zs[i], dtype, scale=10)
        assert_close(net.buffer(1, i, len(rows)), As[i], dtype, scale=10)
    # the output layer's Z = A W + b, its activation left to the loss
    assert_close(net.buffer(0, 2, len(rows)), Zs[2], dtype, scale=10)


def kernel_batch(X, Y, sw, rows, params, units, act, loss_name, alpha, sparse):
    """Run batch_loss_and_gradient; returns (loss, grads, net)."""
    dtype = params.dtype
    net = Net(units, len(rows), dtype)
    batch = kernel_inputs(X, rows, sparse, dtype)
    grads = np.full_like(params, np.nan)
    targets = fnet.Targets(Y, np.empty(0, dtype) if sw is None else sw, sw is not None)
    objective = fnet.Objective(
        fa.ACTIVATION_CODES[act], LOSS_CODE[loss_name], eps_of(dtype), alpha
    )
    loss = ft.loss_and_gradient(net.kernel(params, grads), batch, targets, objective)
    return loss, grads, net


# (sparse, weighted, alpha, n_samples, batch rows)
BATCH_CONFIGS = [
    pytest.param(False, False, 0.0, 9, 9, id="dense"),
    pytest.param(True, True, 0.05, 9, 6, id="csr-sw-alpha"),
    pytest.param(False, True, 0.3, 9, 5, id="dense-sw-alpha"),
    pytest.param(False, False, 0.1, 1, 1, id="n1-alpha"),
    pytest.param(True, False, 0.0, 4, 1, id="csr-batch1"),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sparse,weighted,alpha,n,nb", BATCH_CONFIGS)
@pytest.mark.parametrize("loss_name,k", OUTPUT_CASES)
@pytest.mark.parametrize("act", ACTS)
def test_batch_loss_and_gradient(
    act, loss_name, k, sparse, weighted, alpha, n, nb, dtype
):
    rng = np.random.default_rng(9)
    units = [5, 4, 3, k]
    X = random_csr(rng, n, 5, dtype).toarray()
    Y = targets(rng, loss_name, n, k, dtype)
    sw = rng.uniform(0.2, 2.0, n).astype(dtype) if weighted else None
    rows = rng.permutation(n)[:nb].astype(np.int64)
    params = random_params(rng, units, dtype)
    loss, grads, net = kernel_batch(
        X, Y, sw, rows, params, units, act, loss_name, alpha, sparse
    )
    sw_b = None if sw is None else sw[rows]
    loss_ref, grads_ref = ref.flat_loss_and_gradient(
        X[rows], Y[rows], sw_b, params, units, act, loss_name, alpha, eps_of(dtype)
    )
    assert_close(loss, loss_ref, dtype, scale=10)
    assert_close(grads, grads_ref, dtype, scale=10)
    coefs, intercepts = ref.unpack(params, units)
    _, As = ref.forward(
        X[rows], coefs, intercepts, act, ref.OUTPUT_ACTIVATION[loss_name]
    )
    assert_close(net.buffer(1, 2, nb), As[-1], dtype, scale=10)


def predict_kernel(
    X, params, units, act, loss_name, block, n_labels=0, sparse=False, claims=None
):
    """The prediction kernel's output (activations, or labels) and its flag.

    Rows of blocks the call leaves to other threads (``claims``) stay NaN, or
    -1 for labels.
    """
    dtype = params.dtype
    claims = np.empty(0, np.int64) if claims is None else claims
    net = Net(units, block, dtype, backward=False)
    if sparse:
        dense, (data, indices, indptr) = (
            np.empty((0, units[0]), dtype),
            csr_arrays(sp.csr_matrix(X)),
        )
    else:
        dense, (data, indices, indptr) = X, empty_csr(dtype)
    n = X.shape[0]
    result = np.full((0 if n_labels else n, units[-1]), np.nan, dtype)
    labels = np.full((n if n_labels else 0, max(n_labels, 1)), -1, np.int64)
    non_finite = ft.predict(
        params, net.offsets, net.units, net.ws, net.ws_offsets, dense, data,
        indices, indptr, fa.ACTIVATION_CODES[act], LOSS_CODE[loss_name], block,
        result, labels, claims,
    )  # fmt: skip
    return (labels if n_labels else result), non_finite


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("loss_name,k", OUTPUT_CASES)
@pytest.mark.parametrize("block", [4, 64])
def test_predict_forward(loss_name, k, sparse, block, dtype):
    rng = np.random.default_rng(10)
    units = [6, 5, 4, k]
    X = random_csr(rng, 11, 6, dtype).toarray()
    params = random_params(rng, np.array(units), dtype)
    result, non_finite = predict_kernel(X, params, units, "gelu", loss_name, block,
                                        sparse=sparse)  # fmt: skip
    coefs, intercepts = ref.unpack(params, units)
    _, As = ref.forward(X, coefs, intercepts, "gelu", ref.OUTPUT_ACTIVATION[loss_name])
    assert_close(result, As[-1], dtype, scale=10)
    assert not non_finite


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize(
    "loss_name,k", [("binary_log_loss", 1), ("binary_log_loss", 3), ("log_loss", 4)]
)
def test_predict_labels_are_the_activations_argmax_or_threshold(
    loss_name, k, sparse, dtype
):
    rng = np.random.default_rng(11)
    units = [6, 5, k]
    X = rng.normal(size=(40, 6)).astype(dtype)
    params = random_params(rng, np.array(units), dtype, scale=2.0)
    proba, _ = predict_kernel(X, params, units, "tanh", loss_name, 7, sparse=sparse)
    n_labels = 1 if loss_name == "log_loss" else k
    labels, _ = predict_kernel(
        X, params, units, "tanh", loss_name, 7, n_labels, sparse=sparse
    )
    if loss_name == "log_loss":
        np.testing.assert_array_equal(labels[:, 0], np.argmax(proba, axis=1))
    else:
        np.testing.assert_array_equal(labels, (proba > 0.5).astype(np.int64))


@pytest.mark.parametrize("dtype", DTYPES)
def test_predict_labels_decide_close_calls_on_the_normalised_values(dtype):
    # A one-layer view of the output: Z itself, with logits that tie after
    # normalising (float32 exp(-1e-9) == 1), exact ties, NaN and infinities.
    Z = np.array(
        [
            [-1e-9, 0.0, -5.0],
            [0.0, -1e-9, -5.0],
            [2.0, 2.0, 1.0],
            [1.0, np.nan, 3.0],
            [np.inf, 1.0, np.inf],
            [-np.inf, -np.inf, -np.inf],
            [1.0, 1.0 + 1e-4, 0.5],
            [0.3, 0.1, 0.3 - 2e-3],
        ],
        dtype=dtype,
    )
    labels = np.full((Z.shape[0], 1), -1, np.int64)
    with np.errstate(invalid="ignore"):
        fl.output_labels(Z.copy(), fl.SOFTMAX_LOG_LOSS, labels)
        proba = Z.copy()
        fl.inplace_output_activation(proba, fl.SOFTMAX_LOG_LOSS)
    np.testing.assert_array_equal(labels[:, 0], np.argmax(proba, axis=1))
    z = np.array([[-2e-4, 0.0, 1e-12, -1e-12, np.nan, np.inf, -np.inf, 3.0]], dtype)
    labels = np.full(z.shape, -1, np.int64)
    fl.output_labels(z.copy(), fl.BINARY_LOG_LOSS, labels)
    proba = z.copy()
    fl.inplace_output_activation(proba, fl.BINARY_LOG_LOSS)
    np.testing.assert_array_equal(labels, (proba > 0.5).astype(np.int64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_predict_flags_every_non_finite_input_row(bad, sparse, dtype):
    rng = np.random.default_rng(12)
    units = [6, 5, 3]
    params = random_params(rng, np.array(units), dtype)
    X = rng.normal(size=(9, 6)).astype(dtype)
    _, non_finite = predict_kernel(X, params, units, "relu", "log_loss", 4,
                                   sparse=sparse)  # fmt: skip
    assert not non_finite
    for row, col in [(0, 0), (8, 5), (4, 2)]:
        Xb = X.copy()
        Xb[row, col] = bad
        with np.errstate(invalid="ignore", over="ignore"):
            _, non_finite = predict_kernel(Xb, params, units, "relu", "log_loss", 4,
                                           sparse=sparse)  # fmt: skip
        assert non_finite


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("n_labels", [0, 1])
def test_predict_runs_the_blocks_it_claims(n_labels, sparse, dtype):
    rng = np.random.default_rng(13)
    units = [6, 5, 3]
    params = random_params(rng, np.array(units), dtype)
    X = rng.normal(size=(11, 6)).astype(dtype)
    X[1, 2] = np.nan  # in the first block of 4 rows
    with np.errstate(invalid="ignore"):
        whole, _ = predict_kernel(X, params, units, "relu", "log_loss", 4, n_labels,
                                  sparse=sparse)  # fmt: skip
    for first in range(4):
        claims = np.array([first], np.int64)
        with np.errstate(invalid="ignore"):
            out, non_finite = predict_kernel(X, params, units, "relu", "log_loss",
                                             4, n_labels, sparse, claims)  # fmt: skip
        ran = slice(min(4 * first, 11), None)
        np.testing.assert_array_equal(out[ran], whole[ran])
        untouched = out[: ran.start]
        assert (untouched == -1).all() if n_labels else np.isnan(untouched).all()
        assert non_finite == (first == 0)
        assert claims[0] == max(first, 3) + 1  # each claim, and the one past


@pytest.mark.parametrize("dtype", DTYPES)
def test_predict_threads_sharing_claims_cover_every_block_once(dtype):
    rng = np.random.default_rng(14)
    units = [8, 16, 4]
    params = random_params(rng, np.array(units), dtype)
    X = rng.normal(size=(5003, 8)).astype(dtype)
    whole, _ = predict_kernel(X, params, units, "tanh", "log_loss", 8)
    net = Net(units, 8, dtype, backward=False)
    claims = np.zeros(1, np.int64)
    result = np.full_like(whole, np.nan)

    def run():
        ws = np.empty_like(net.ws)  # each thread's own workspace
        return ft.predict(
            params, net.offsets, net.units, ws, net.ws_offsets, X,
            *empty_csr(dtype), fa.ACTIVATION_CODES["tanh"], LOSS_CODE["log_loss"],
            8, result, np.empty((0, 1), np.int64), claims,
        )  # fmt: skip

    with ThreadPoolExecutor(4) as pool:
        flags = [f.result() for f in [pool.submit(run) for _ in range(4)]]
    np.testing.assert_array_equal(result, whole)
    assert not any(flags)
    assert claims[0] == -(-5003 // 8) + 4


# ----------------------------------------------------------------------------
# Optimizers
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_update(nesterov, dtype):
    rng = np.random.default_rng(11)
    p, g, v = (rng.normal(size=13).astype(dtype) for _ in range(3))
    p_ref, v_ref = ref.sgd_step(p, g, v, 0.1, 0.9, nesterov)
    fo.sgd_momentum_update(p, g, v, 0.1, 0.9, nesterov)
    assert_close(p, p_ref, dtype)
    assert_close(v, v_ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("t", [1, 2, 50])
def test_adam_update(t, dtype):
    rng = np.random.default_rng(12)
    p, g, m = (rng.normal(size=13).astype(dtype) for _ in range(3))
    v = rng.uniform(0.0, 2.0, 13).astype(dtype)
    expected = ref.adam_step(p, g, m, v, t, 0.1, 0.9, 0.999, 1e-8)
    fo.adam_update(p, g, m, v, 0.1, 0.9, 0.999, 1e-8, t)
    for actual, want in zip((p, m, v), expected, strict=True):
        assert_close(actual, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", ["sgd", "nesterov", "adam"])
def test_optimizer_step_dispatch(solver, dtype):
    rng = np.random.default_rng(13)
    p, g = (rng.normal(size=7).astype(dtype) for _ in range(2))
    state = rng.uniform(0.0, 1.0, (2, 7)).astype(dtype)
    step = np.array([3], dtype=np.int64)
    hyper = np.array([0.05, 0.8, float(solver == "nesterov"), 0.9, 0.99, 1e-7])
    if solver == "adam":
        expected = ref.adam_step(p, g, state[0], state[1], 4, 0.05, 0.9, 0.99, 1e-7)
    else:
        expected = ref.sgd_step(p, g, state[0], 0.05, 0.8, solver == "nesterov")
        expected += (state[1].astype(np.float64),)
    code = fo.ADAM if solver == "adam" else fo.SGD
    fo.optimizer_step(p, g, fo.Optimizer(code, hyper, state, step))
    assert step[0] == (4 if solver == "adam" else 3)
    for actual, want in zip((p, state[0], state[1]), expected, strict=True):
        assert_close(actual, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", ["sgd", "nesterov", "adam"])
def test_fused_optimizer_step_from_raw_sums(solver, dtype):
    # The step finishes the gradient itself: g = (raw + alpha p) / sw_sum on
    # the first n_coef entries (coefficients), g = raw / sw_sum on the rest.
    rng = np.random.default_rng(20)
    n_params, n_coef, alpha, sw_sum = 11, 8, 0.2, 3.5
    p, raw = (rng.normal(size=n_params).astype(dtype) for _ in range(2))
    state = rng.uniform(0.0, 1.0, (2, n_params)).astype(dtype)
    step = np.array([0], dtype=np.int64)
    hyper = np.array([0.05, 0.8, float(solver == "nesterov"), 0.9, 0.99, 1e-7])
    g = raw.astype(np.float64) / sw_sum
    g[:n_coef] += alpha * p[:n_coef] / sw_sum
    if solver == "adam":
        expected = ref.adam_step(p, g, state[0], state[1], 1, 0.05, 0.9, 0.99, 1e-7)
    else:
        expected = ref.sgd_step(p, g, state[0], 0.05, 0.8, solver == "nesterov")
        expected += (state[1].astype(np.float64),)
    optimizer = fo.Optimizer(
        fo.ADAM if solver == "adam" else fo.SGD, hyper, state, step
    )
    fo.fused_optimizer_step(
        p, raw, optimizer, alpha, 1.0 / sw_sum, n_coef, np.empty(6, dtype)
    )
    assert step[0] == (1 if solver == "adam" else 0)
    for actual, want in zip((p, state[0], state[1]), expected, strict=True):
        assert_close(actual, want, dtype)


# ----------------------------------------------------------------------------
# A whole epoch
# ----------------------------------------------------------------------------
OPT = {
    "sgd": dict(solver="sgd", lr=0.1, momentum=0.9, nesterov=False),
    # The same step, folded into the weight-gradient products.
    "folded": dict(solver="sgd", lr=0.1, momentum=0.9, nesterov=False, fold=True),
    "nesterov": dict(solver="sgd", lr=0.1, momentum=0.9, nesterov=True),
    "adam": dict(solver="adam", lr=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-8),
}


def run_epoch_pair(prob, batch_size, solver, sparse, as_the_engine=False):
    """Train one epoch with the kernel and the twin from the same state.

    ``prob`` holds X, Y, sw, order, params, units, act, loss_name and alpha.
    Dense inputs carry empty CSR arrays and SGD optimizers a step counter,
    or, ``as_the_engine``, ``()`` for both, as the engine passes them.
    """
    X, params, sw, order = prob["X"], prob["params"], prob["sw"], prob["order"]
    dtype = params.dtype
    rng = np.random.default_rng(14)
    state = (0.01 * rng.normal(size=(2, params.size))).astype(dtype)
    state[1] = np.abs(state[1])
    step = np.array([2], dtype=np.int64)
    opt = dict(OPT[solver], t=2, velocity=state[0], m=state[0], v=state[1])
    momentum, nesterov = opt.get("momentum", 0.0), opt.get("nesterov", False)
    fold = opt.pop("fold", False)
    hyper = np.array([opt["lr"], momentum, float(nesterov), 0.9, 0.999, 1e-8])
    loss_ref, params_ref = ref.epoch(
        batch_size=batch_size, eps=eps_of(dtype), opt=opt, **prob
    )
    net = Net(prob["units"], batch_size, dtype)
    if sparse:
        Xk, csr = np.empty((0, X.shape[1]), dtype), csr_arrays(sp.csr_matrix(X))
        Xbuf = np.empty((0, X.shape[1]), dtype)
    else:
        Xk, csr = X, () if as_the_engine else empty_csr(dtype)
        Xbuf = np.empty((batch_size, X.shape[1]), dtype)
    params = params.copy()
    targets = fnet.Targets(
        prob["Y"], np.empty(0, dtype) if sw is None else sw, sw is not None
    )
    objective = fnet.Objective(
        fa.ACTIVATION_CODES[prob["act"]], LOSS_CODE[prob["loss_name"]],
        eps_of(dtype), prob["alpha"],
    )  # fmt: skip
    adam = solver == "adam"
    counter = () if as_the_engine and not adam else step
    optimizer = fo.Optimizer(fo.ADAM if adam else fo.SGD, hyper, state, counter)
    # Folded momentum accumulates the products straight into the velocity.
    grads = state[0] if fold else np.empty_like(params)
    loss = ft.train_epoch(
        net.kernel(params, grads), fnet.Inputs(Xk, csr, sparse, True), targets,
        objective,
        optimizer, order, batch_size, Xbuf, fold,
    )  # fmt: skip
    n_batches = -(-len(order) // batch_size)
    return (loss, params, state, step[0]), (loss_ref, params_ref, opt, 2 + n_batches)


def check_epoch(kernel, twin, solver, dtype):
    (loss, params, state, step), (loss_ref, params_ref, opt, step_ref) = kernel, twin
    assert_close(loss, loss_ref, dtype, scale=10)
    assert_close(params, params_ref, dtype, scale=10)
    if solver == "adam":
        assert step == step_ref
        assert_close(state[0], opt["m"], dtype, scale=10)
        assert_close(state[1], opt["v"], dtype, scale=10)
    else:
        assert_close(state[0], opt["velocity"], dtype, scale=10)


def epoch_problem(rng, n, units, act, loss_name, alpha, dtype, weighted=False):
    X = random_csr(rng, n, units[0], dtype).toarray()
    return dict(
        X=X,
        Y=targets(rng, loss_name, n, units[-1], dtype),
        sw=rng.uniform(0.2, 2.0, n).astype(dtype) if weighted else None,
        order=rng.permutation(n).astype(np.int64),
        params=random_params(rng, units, dtype, scale=0.5),
        units=units,
        act=act,
        loss_name=loss_name,
        alpha=alpha,
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("batch_size", [20, 7, 5, 1])
@pytest.mark.parametrize("solver", ["sgd", "folded", "nesterov", "adam"])
def test_train_epoch(solver, batch_size, weighted, sparse, dtype):
    rng = np.random.default_rng(15)
    prob = epoch_problem(rng, 20, [6, 5, 3], "tanh", "log_loss", 1e-2, dtype, weighted)
    kernel, twin = run_epoch_pair(prob, batch_size, solver, sparse)
    check_epoch(kernel, twin, solver, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss_name,k", OUTPUT_CASES)
@pytest.mark.parametrize("act", ACTS)
def test_train_epoch_every_activation_and_loss(act, loss_name, k, dtype):
    rng = np.random.default_rng(16)
    prob = epoch_problem(rng, 13, [4, 5, k], act, loss_name, 1e-3, dtype)
    kernel, twin = run_epoch_pair(prob, 4, "sgd", False)
    check_epoch(kernel, twin, "sgd", dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", ["sgd", "nesterov", "folded", "adam"])
def test_train_epoch_as_the_engine_calls_it_is_the_same(solver, dtype):
    # The engine's dense inputs carry () for the CSR arrays, and its SGD
    # optimizers () for Adam's step: the kernels then compile without the CSR
    # products and without Adam's update, and must compute the same bits.
    rng = np.random.default_rng(18)
    prob = epoch_problem(rng, 20, [6, 5, 3], "relu", "log_loss", 1e-2, dtype, True)
    with_arrays, twin = run_epoch_pair(prob, 7, solver, False)
    without, _ = run_epoch_pair(prob, 7, solver, False, as_the_engine=True)
    check_epoch(without, twin, solver, dtype)
    assert without[0] == with_arrays[0]
    for a, b in zip(without[1:3], with_arrays[1:3], strict=True):
        np.testing.assert_array_equal(a, b)


def test_train_epoch_checks_hyper_length():
    dtype = np.float64
    rng = np.random.default_rng(19)
    net = Net([3, 4, 2], 2, dtype)
    X, Y = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    params = random_params(rng, [3, 4, 2], dtype)
    state = np.zeros((2, params.size))
    inputs = fnet.Inputs(X, empty_csr(dtype), False, True)
    targets = fnet.Targets(Y, np.empty(0, dtype), False)
    objective = fnet.Objective(
        fa.ACTIVATION_CODES["relu"], fl.SQUARED_ERROR, eps_of(dtype), 0.0
    )
    hyper = np.array([0.1, 0.9, 0.0, 0.9, 0.999, 1e-8])
    for fold, grads in [(False, np.empty_like(params)), (True, state[0])]:

        def run(hyper, fold=fold, grads=grads):
            optimizer = fo.Optimizer(fo.SGD, hyper, state, np.zeros(1, np.int64))
            net_value = net.kernel(params, grads)
            rows = np.arange(4)
            return ft.train_epoch(
                net_value, inputs, targets, objective, optimizer, rows, 2,
                np.empty((2, 3)), fold,
            )  # fmt: skip

        with pytest.raises(ValueError, match="hyper has the wrong length"):
            run(hyper[:-1])
        before = params.copy()
        run(hyper)
        assert not np.array_equal(params, before)


@pytest.mark.parametrize("dtype", DTYPES)
def test_train_epoch_single_sample(dtype):
    rng = np.random.default_rng(17)
    prob = epoch_problem(rng, 1, [3, 4, 2], "relu", "squared_error", 0.1, dtype)
    kernel, twin = run_epoch_pair(prob, 1, "adam", False)
    check_epoch(kernel, twin, "adam", dtype)


# ----------------------------------------------------------------------------
# Numerical stability for logits of +-1e4
# ----------------------------------------------------------------------------
HUGE = np.array([-1e4, -1e3, -90.0, 90.0, 1e3, 1e4])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", ACTS)
def test_hidden_activations_at_huge_inputs(act, dtype):
    code = fa.ACTIVATION_CODES[act]
    z = HUGE.astype(dtype)
    f = np.array([fa.activation(v, code) for v in z])
    fp = np.array(
        [fa.activation_prime(v, dtype(w), code) for v, w in zip(z, f, strict=True)]
    )
    assert np.isfinite(f).all() and np.isfinite(fp).all()
    assert_close(f, ref.activation(act, z), dtype)
    assert_close(fp, ref.activation_derivative(act, z), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss_name,k", [c for c in OUTPUT_CASES if c[0] != "poisson"])
def test_output_layer_at_huge_logits(loss_name, k, dtype):
    rng = np.random.default_rng(18)
    n = 8
    Z = rng.choice([-1e4, 1e4, 0.0, 3.0], size=(n, k)).astype(dtype)
    Z[0] = 1e4  # ties at the maximum
    Y = targets(rng, loss_name, n, k, dtype)
    rows = np.arange(n, dtype=np.int64)
    loss, _, A, D = run_output_loss(Z, np.zeros(k, dtype), Y, rows, None, loss_name)
    assert np.isfinite(loss) and np.isfinite(A).all() and np.isfinite(D).all()
    A_ref = ref.output_activation(ref.OUTPUT_ACTIVATION[loss_name], Z)
    assert_close(loss, ref.loss(loss_name, Y, A_ref, None, eps_of(dtype)), dtype)
    assert_close(A, A_ref, dtype)
    if loss_name == "log_loss":
        assert_close(A.sum(axis=1), np.ones(n), dtype)
    P = Z.copy()
    fl.inplace_output_activation(P, LOSS_CODE[loss_name])
    assert np.isfinite(P).all()
    assert_close(P, A_ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("y", [0.0, 2.0])
def test_poisson_at_very_negative_log_rate(y, dtype):
    # exp(z) underflows to 0: scikit-learn's xlogy(y, y / a) - y + a is then
    # NaN (y = 0) or inf (y > 0), and so is fastnn's loss; the activations and
    # the delta stay finite.
    from sklearn.neural_network._base import poisson_loss

    Z = np.array([[-1e4]], dtype=dtype)
    Y = np.array([[y]], dtype=dtype)
    loss, _, A, D = run_output_loss(
        Z, np.zeros(1, dtype), Y, np.arange(1, dtype=np.int64), None, "poisson"
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = poisson_loss(Y, np.exp(Z))
    assert not np.isfinite(expected)
    np.testing.assert_array_equal(loss, expected)
    assert np.isfinite(A).all() and np.isfinite(D).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss_name,k", [("log_loss", 3), ("binary_log_loss", 2)])
def test_network_with_huge_logits_stays_finite(loss_name, k, dtype):
    rng = np.random.default_rng(19)
    units = [4, 5, k]
    X = rng.normal(size=(6, 4)).astype(dtype)
    Y = targets(rng, loss_name, 6, k, dtype)
    params = random_params(rng, units, dtype)
    coefs, _ = fnet.layer_views(params, units)
    coefs[-1] *= dtype(1e4)  # tanh units of +-1 times 1e4: logits ~ +-1e4
    rows = np.arange(6, dtype=np.int64)
    loss, grads, net = kernel_batch(
        X, Y, None, rows, params, units, "tanh", loss_name, 1e-4, False
    )
    assert np.isfinite(loss) and np.isfinite(grads).all()
    assert np.abs(net.buffer(0, 1, 6)).max() > 1e3
    loss_ref, grads_ref = ref.flat_loss_and_gradient(
        X, Y, None, params, units, "tanh", loss_name, 1e-4, eps_of(dtype)
    )
    assert_close(loss, loss_ref, dtype, scale=10)
    if loss_name == "log_loss":
        P = net.buffer(1, 1, 6)
        assert_close(P.sum(axis=1), np.ones(6), dtype)


# ----------------------------------------------------------------------------
# The data a fit receives: finiteness and integer labels
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 33, 1000])
def test_all_finite_finds_every_nan_and_infinity(n, dtype):
    rng = np.random.default_rng(n)
    values = (rng.normal(size=n) * 1e30).astype(dtype)
    values[::3] = np.finfo(dtype).max  # finite, and x - x is 0 there too
    assert fdata.all_finite(values) is ref.all_finite(values) is True
    for bad in (np.nan, np.inf, -np.inf):
        for position in {0, n // 2, n - 1} if n else ():
            spoiled = values.copy()
            spoiled[position] = bad
            assert fdata.all_finite(spoiled) is ref.all_finite(spoiled) is False


@pytest.mark.parametrize(
    "labels",
    [[0, 1], [1, 0, 1, 1], [3, 3, 7], [0, 1, 2], [5, 2, 9, 2, 0, 9, 9], [4] * 6,
     list(range(40))[::-1]],
)  # fmt: skip
def test_one_hot_labels_match_their_twin(labels):
    y = np.asarray(labels, dtype=np.int64)
    classes, Y = fdata.one_hot_labels(y, 64)
    expected_classes, expected_Y = ref.one_hot_labels(y)
    np.testing.assert_array_equal(classes, expected_classes)
    assert Y.dtype == np.bool_
    if len(expected_classes) > 1:  # one class: nothing to encode
        np.testing.assert_array_equal(Y, expected_Y)


@pytest.mark.parametrize("labels", [[0, -1, 2], [0, 64, 1], [100, 3]])
def test_one_hot_labels_leave_labels_out_of_range(labels):
    classes, Y = fdata.one_hot_labels(np.asarray(labels, dtype=np.int64), 64)
    assert classes.shape == (0,)
    assert Y.shape == (len(labels), 0)
