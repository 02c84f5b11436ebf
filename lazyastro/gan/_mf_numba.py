"""Compiled (Numba) CPU form of the one-sweep Minkowski kernel; same formulas and summation order.

Imported on the first :func:`lazyastro.gan.kernels.minkowski` call with a numpy image
(compiling takes a few seconds once; the machine code is cached on disk). One cell
at a time, in C order: the cell's corner minimum and maximum give, by binary search in
the sorted thresholds, the thresholds below which it is full and the (few) thresholds
it straddles; only those are evaluated. Sequential and without fast-math, so the sums
are bit-reproducible and equal the vectorised form's.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def _tri(u, v):
    return 0.5 * u * v, math.sqrt(u * u + v * v)


@njit(cache=True, inline="always")
def _recip(a, b):
    return 1.0 / (a - b) if a != b else 0.0


@njit(cache=True)
def _cell(p00, p10, p11, p01, t, legacy):
    return _cell_r(p00, p10, p11, p01, _recip(p00, p10), _recip(p10, p11), _recip(p01, p11),
                   _recip(p00, p01), t, legacy)


@njit(cache=True, inline="always")
def _cell_r(p00, p10, p11, p01, r1, r2, r3, r4, t, legacy):
    pat = (p00 > t) * 1 + (p10 > t) * 2 + (p11 > t) * 4 + (p01 > t) * 8
    if pat == 0:
        return 0.0, 0.0, 0.0
    if pat == 15:
        return 1.0, 0.0, 0.0
    # crossing fractions (reciprocals of the edge differences are computed once per cell);
    # only those of crossed edges are used
    a1 = (p00 - t) * r1
    a2 = (p10 - t) * r2
    a3 = (p01 - t) * r3
    a4 = (p00 - t) * r4
    if pat == 1 or pat == 14:
        a, ln = _tri(a1, a4)
    elif pat == 2 or pat == 13:
        a, ln = _tri(1 - a1, a2)
    elif pat == 4 or pat == 11:
        a, ln = _tri(1 - a2, 1 - a3)
    elif pat == 8 or pat == 7:
        a, ln = _tri(a3, 1 - a4)
    elif pat == 3:
        d = a4 - a2
        return (a2 + a4) * 0.5, math.sqrt(1 + d * d), 0.0
    elif pat == 12:
        d = a4 - a2
        return 1 - (a2 + a4) * 0.5, math.sqrt(1 + d * d), 0.0
    elif pat == 9:
        d = a3 - a1
        return (a1 + a3) * 0.5, math.sqrt(1 + d * d), 0.0
    elif pat == 6:
        d = a3 - a1
        return 1 - (a1 + a3) * 0.5, math.sqrt(1 + d * d), 0.0
    else:  # saddles 5 and 10
        ar0, l0 = _tri(a1, a4)
        ar1, l1 = _tri(1 - a1, a2)
        ar2, l2 = _tri(1 - a2, 1 - a3)
        ar3, l3 = _tri(a3, 1 - a4)
        if pat == 5:
            a_out, a_in, l_out, l_in = ar1 + ar3, ar0 + ar2, l1 + l3, l0 + l2
        else:
            a_out, a_in, l_out, l_in = ar0 + ar2, ar1 + ar3, l0 + l2, l1 + l3
        if legacy:
            if pat == 5:
                return 1 - a_out, l_out, 0.5
            return 1 - ar0 + ar2, l_out, 0.5
        if (p00 + p10 + p11 + p01) * 0.25 > t:
            return 1 - a_out, l_out, -0.5
        return a_in, l_in, 0.5
    if pat == 1 or pat == 2 or pat == 4 or pat == 8:
        return a, ln, 0.25
    return 1 - a, ln, -0.25


@njit(cache=True)
def _nanmin(a, b):
    if a != a:
        return b
    if b != b:
        return a
    return a if a < b else b


@njit(cache=True)
def _nanmax(a, b):
    if a != a:
        return b
    if b != b:
        return a
    return a if a > b else b


@njit(cache=True, nogil=True)
def sweep(img, ts, legacy):
    """(3, n) functionals of ``img`` (float64, 2-D) at the *sorted* thresholds ``ts``."""
    h, w = img.shape
    n = ts.shape[0]
    full_from = np.zeros(n + 1, np.int64)
    f_acc = np.zeros(n)
    u_acc = np.zeros(n)
    c_acc = np.zeros(n)
    for y in range(h - 1):
        for x in range(w - 1):
            p00 = img[y, x]
            p10 = img[y, x + 1]
            p11 = img[y + 1, x + 1]
            p01 = img[y + 1, x]
            mn = _nanmin(_nanmin(p00, p10), _nanmin(p11, p01))
            mx = _nanmax(_nanmax(p00, p10), _nanmax(p11, p01))
            if mx != mx:
                continue  # all corners NaN: never in
            if p00 != p00 or p10 != p10 or p11 != p11 or p01 != p01:
                lo = 0
            else:
                lo = np.searchsorted(ts, mn)
                full_from[lo] += 1
            hi = np.searchsorted(ts, mx)
            if hi <= lo:
                continue
            r1 = _recip(p00, p10)
            r2 = _recip(p10, p11)
            r3 = _recip(p01, p11)
            r4 = _recip(p00, p01)
            for j in range(lo, hi):
                f, u, c = _cell_r(p00, p10, p11, p01, r1, r2, r3, r4, ts[j], legacy)
                f_acc[j] += f
                u_acc[j] += u
                c_acc[j] += c
    out = np.empty((3, n))
    run = 0
    for j in range(n - 1, -1, -1):
        run += full_from[j + 1]
        out[0, j] = float(run) + f_acc[j]
        out[1, j] = u_acc[j]
        out[2, j] = c_acc[j]
    return out
