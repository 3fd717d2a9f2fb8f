"""Sums in NumPy's order of rounding.

``np.sum`` along a contiguous axis adds pairwise: blocks of up to 128 values
in 8 interleaved partial sums, and longer runs split in two. scikit-learn's
losses and bias gradients reduce single columns that way, and L-BFGS's line
search tells apart values that differ in the last bit, so the kernels sum
those columns in the same order.
"""

import numpy as np
from numba import njit

from .._config import JIT_INTERNAL

# NumPy sums up to this many values in one unrolled block; the halving below
# it stays within this many levels for any array size.
PAIRWISE_BLOCK = 128
PAIRWISE_DEPTH = 64


@njit(**JIT_INTERNAL)
def pairwise_sum(values):
    """``values.sum()`` for a 1-D array, in NumPy's order of rounding.

    NumPy sums blocks of up to :data:`PAIRWISE_BLOCK` values with
    :func:`block_sum`, and splits longer runs in two halves, the first a
    multiple of 8 long, adding the halves' sums. The halving runs here on an
    explicit stack of (start, count, left half's sum) frames, the count
    negated once the left half is done (numba cannot load recursive
    functions from its cache).
    """
    n = values.shape[0]
    if n <= PAIRWISE_BLOCK:
        return block_sum(values)
    frames = np.empty((PAIRWISE_DEPTH, 3))
    top, start, count = 0, 0, n
    while True:
        while count > PAIRWISE_BLOCK:  # descend into left halves
            frames[top, 0], frames[top, 1] = start, count
            top += 1
            count = left_half(count)
        value = block_sum(values[start : start + count])
        while top > 0 and frames[top - 1, 1] < 0:  # right half done: climb
            top -= 1
            value = frames[top, 2] + value
        if top == 0:
            return value
        parent_start, parent_count = int(frames[top - 1, 0]), int(frames[top - 1, 1])
        half = left_half(parent_count)
        frames[top - 1, 1], frames[top - 1, 2] = -parent_count, value
        start, count = parent_start + half, parent_count - half


@njit(**JIT_INTERNAL)
def left_half(count):
    """Length of the first half when NumPy splits ``count`` values."""
    half = count // 2
    return half - half % 8


@njit(**JIT_INTERNAL)
def block_sum(values):
    """NumPy's sum of at most :data:`PAIRWISE_BLOCK` values.

    Fewer than 8 values in order from 0; otherwise 8 interleaved partial
    sums, combined as a balanced tree, then the remainder in order.
    """
    n = values.shape[0]
    total, tail = 0.0, 0
    if n >= 8:
        r0, r1, r2, r3 = values[0], values[1], values[2], values[3]
        r4, r5, r6, r7 = values[4], values[5], values[6], values[7]
        tail = n - n % 8
        for j in range(8, tail, 8):
            r0 += values[j]
            r1 += values[j + 1]
            r2 += values[j + 2]
            r3 += values[j + 3]
            r4 += values[j + 4]
            r5 += values[j + 5]
            r6 += values[j + 6]
            r7 += values[j + 7]
        total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    for j in range(tail, n):
        total += values[j]
    return total
