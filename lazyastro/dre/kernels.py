"""Kernels of the DRE fit: the chi^2 of a block of objects against every convolved model.

Pure functions on in-memory blocks (numpy or CuPy; the array module of the model cube
decides). No dask, no files, no printing. For an object with data ``d``, mask ``M``
(bool) and rms ``sigma`` (all ``B x B``) and a model stamp ``m_k`` (``P`` = mask pixels)::

    F_d   = nansum_P d
    F_k   = sum_P m_k
    s_k   = F_d / F_k
    chi_k = nanmean_P [ (d - s_k m_k)^2 / (a s_k m_k + sigma^2) ]

with ``a = 1`` (variance ``"model"``, the legacy term) or ``a = sum(PSF^2) / t_exp`` (the
fork's ``"psf"`` variance). Accumulation is float64 whatever the input dtype.

Modes (spec section 11.1):

- ``"legacy"``: exactly the formula above. ``F_d`` is a nansum over the whole mask, ``F_k``
  a plain sum over the whole mask, and the mean skips NaN terms only (pixels whose data or
  rms is NaN, and 0/0); infinite and negative terms (``F_d < 0`` or a zero denominator) stay
  in the mean as numpy's ``nanmean`` leaves them.
- ``"default"``: a pixel of the mask is *valid* when its data and rms are finite; ``F_d``,
  ``F_k`` and the mean all run over the valid pixels (so the flux matching uses the same
  pixels as the mean), and terms whose variance ``a s m + sigma^2`` is not positive are
  left out of the mean and counted (``n_excluded``). The mean divides by
  ``count - ddof``.

Forms (same numbers to float64 rounding):

- :func:`chi2_block` on numpy: one compiled (Numba, ``nogil``) pass over (model, mask
  pixel). Each object's mask is turned once into runs of consecutive pixels along rows, and
  its data and variance are compacted into those runs, so both inner loops (``F_k``, then the
  sum with ``s_k`` known) read contiguous memory and vectorise. Models are the outer loop and
  the objects of the block the inner one, so a model stamp is read from memory once per
  block and stays in cache for all its objects. No ``(objects, models, pixels)`` temporary.
- :func:`chi2_block` on CuPy: a CUDA kernel (one warp per (object, model), warp-shuffle
  reductions, float64 accumulation) over flat mask-pixel index lists.
- :func:`chi2_gather`: the legacy algorithm written with the array module (gather the mask
  pixels of every model into ``(K, Npix)``, then whole-array passes); the reference of the
  tests and the baseline of ``benchmarks/dre_fit.py``; runs on numpy or CuPy.
- :func:`chi2_dense`: the dense masked-contraction form of spec 11.3 (``sum m M`` etc. as
  matrix products over all ``B^2`` pixels); pays only for masks covering much of the stamp.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> models = rng.random((3, 8, 8)).astype("f4")
>>> obj = (2.0 * models[1])[None]; mask = np.ones((1, 8, 8), bool); rms = np.ones((1, 8, 8), "f4")
>>> res = chi2_block(obj, mask, rms, models)
>>> int(np.argmin(res.chi[0])), round(float(res.flux[0]), 4) == round(float(obj.sum()), 4)
(1, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit

from ..core.backend import array_namespace, is_cupy
from ..core.errors import ParameterError

__all__ = ["chi2_block", "chi2_gather", "chi2_dense", "model_extremes", "Chi2Result", "MODES",
           "VARIANCES", "check_mode", "check_variance"]

MODES = ("default", "legacy")
VARIANCES = ("model", "psf")


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`MODES`, else :class:`ParameterError`."""
    if mode not in MODES:
        raise ParameterError(f"mode must be one of {', '.join(map(repr, MODES))}, got {mode!r}")
    return mode


def check_variance(variance: str) -> str:
    """``variance`` if it is one of :data:`VARIANCES`, else :class:`ParameterError`."""
    if variance not in VARIANCES:
        raise ParameterError(
            f"variance must be one of {', '.join(map(repr, VARIANCES))}, got {variance!r}")
    return variance


@dataclass
class Chi2Result:
    """What :func:`chi2_block` returns for a block of ``N`` objects and ``K`` models.

    Attributes
    ----------
    chi : array (N, K) float32
        The reduced chi^2 (NaN where no term counts, e.g. an all-NaN object).
    flux : array (N,) float64
        ``F_d`` of each object (over the mask; over its valid pixels by default).
    npix : array (N,) int64
        Pixels entering the mean (mask pixels; valid mask pixels by default).
    n_excluded : array (N,) int64
        (model, pixel) terms left out for a non-positive variance, summed over the models
        (default mode; 0 in legacy mode).
    """

    chi: Any
    flux: Any
    npix: Any
    n_excluded: Any


# --------------------------------------------------------------------------- inputs


def _models_2d(models: Any, xp) -> Any:
    m = xp.asarray(models)
    if m.ndim < 3:
        raise ParameterError(f"models must be (..., y, x) stamps, got shape {tuple(m.shape)}")
    by, bx = m.shape[-2:]
    return xp.ascontiguousarray(m.reshape(-1, by * bx), dtype=xp.float32), (by, bx)


def _objects(obj, mask, rms, xp, box):
    obj = xp.asarray(obj)
    mask = xp.asarray(mask)
    rms = xp.asarray(rms)
    if obj.ndim == 2:
        obj, mask, rms = obj[None], mask[None], rms[None]
    for name, a in (("obj", obj), ("seg", mask), ("rms", rms)):
        if a.ndim != 3 or tuple(a.shape[1:]) != tuple(box):
            raise ParameterError(
                f"{name}: cut shape {tuple(a.shape[-2:])} differs from the model box {tuple(box)}")
        if a.shape[0] != obj.shape[0]:
            raise ParameterError(f"{name}: {a.shape[0]} objects, obj has {obj.shape[0]}")
    if mask.dtype != bool:
        mask = mask != 0
    return obj, mask, rms


def _variance_factor(variance: str, psf_sum_sq: float | None, exposure: float) -> float:
    check_variance(variance)
    if variance == "model":
        return 1.0
    if psf_sum_sq is None or not np.isfinite(psf_sum_sq) or psf_sum_sq <= 0:
        raise ParameterError(f"variance 'psf' needs a positive psf_sum_sq, got {psf_sum_sq!r}")
    if not np.isfinite(exposure) or exposure <= 0:
        raise ParameterError(f"exposure must be a positive number, got {exposure!r}")
    return float(psf_sum_sq) / float(exposure)


def _prepare(obj, mask, rms, xp, mode):
    """Flattened (N, B^2) float64 data and variance, the F_k mask, the chi mask and F_d."""
    n = obj.shape[0]
    d = obj.reshape(n, -1).astype(xp.float64)
    s = rms.reshape(n, -1).astype(xp.float64)
    m = mask.reshape(n, -1)
    if mode == "legacy":
        fd = xp.nansum(xp.where(m, d, 0.0), axis=1)
        valid = m & ~xp.isnan(d) & ~xp.isnan(s)
        fk_mask = m
    else:
        valid = m & xp.isfinite(d) & xp.isfinite(s)
        fd = xp.sum(xp.where(valid, d, 0.0), axis=1)
        fk_mask = valid
    return d, s * s, fk_mask, valid, fd


# --------------------------------------------------------------------------- numba form


@njit(nogil=True, cache=True, error_model="numpy", fastmath={"reassoc", "contract", "nsz"})
def _sum_runs(mk, start, length, p0, p1):  # pragma: no cover - compiled
    acc = 0.0
    for r in range(p0, p1):
        a = mk[start[r]:start[r] + length[r]]  # slices: indices from 0 let LLVM vectorise
        for i in range(a.shape[0]):
            acc += a[i]
    return acc


@njit(nogil=True, cache=True, error_model="numpy", fastmath={"reassoc", "contract", "nsz"})
def _chi_sum(mk, start, length, off, p0, p1, d, rms, s, sa):  # pragma: no cover - compiled
    """Sum of (d - s m)^2 / (sa m + rms^2) over the runs, no checks (vectorised)."""
    acc = 0.0
    for r in range(p0, p1):
        n = length[r]
        a = mk[start[r]:start[r] + n]
        dd = d[off[r]:off[r] + n]
        rr = rms[off[r]:off[r] + n]
        for i in range(n):
            mm = np.float64(a[i])
            res = np.float64(dd[i]) - s * mm
            sg = np.float64(rr[i])
            acc += res * res / (sa * mm + sg * sg)
    return acc


@njit(nogil=True, cache=True, error_model="numpy")
def _chi_sum_checked(mk, start, length, off, p0, p1, d, rms, s, sa, legacy):  # pragma: no cover
    """Sum and count of the terms kept (legacy: not NaN; default: positive variance)."""
    acc = 0.0
    cnt = 0
    for r in range(p0, p1):
        n = length[r]
        a = mk[start[r]:start[r] + n]
        dd = d[off[r]:off[r] + n]
        rr = rms[off[r]:off[r] + n]
        for i in range(n):
            mm = np.float64(a[i])
            res = np.float64(dd[i]) - s * mm
            sg = np.float64(rr[i])
            den = sa * mm + sg * sg
            t = res * res / den
            if legacy:
                ok = t == t
            else:
                ok = den > 0.0 and t == t
            if ok:
                acc += t
                cnt += 1
    return acc, cnt


@njit(nogil=True, cache=True, error_model="numpy", fastmath={"reassoc", "contract", "nsz"})
def _sum_runs2(mk, mk2, start, length, p0, p1):  # pragma: no cover - compiled
    """F_k of two models in one pass over the runs."""
    acc = 0.0
    acc2 = 0.0
    for r in range(p0, p1):
        n = length[r]
        a = mk[start[r]:start[r] + n]
        b = mk2[start[r]:start[r] + n]
        for i in range(n):
            acc += a[i]
            acc2 += b[i]
    return acc, acc2


@njit(nogil=True, cache=True, error_model="numpy", fastmath={"reassoc", "contract", "nsz"})
def _chi_sum2(mk, mk2, start, length, off, p0, p1, d, rms, s, sa, s2, sa2):  # pragma: no cover
    """:func:`_chi_sum` of two models in one pass (the data are read once, twice the work per
    loop iteration: short runs cost half the loop overhead per model)."""
    acc = 0.0
    acc2 = 0.0
    for r in range(p0, p1):
        n = length[r]
        a = mk[start[r]:start[r] + n]
        b = mk2[start[r]:start[r] + n]
        dd = d[off[r]:off[r] + n]
        rr = rms[off[r]:off[r] + n]
        for i in range(n):
            dv = np.float64(dd[i])
            sg = np.float64(rr[i])
            v = sg * sg
            ma = np.float64(a[i])
            ra = dv - s * ma
            acc += ra * ra / (sa * ma + v)
            mb = np.float64(b[i])
            rb = dv - s2 * mb
            acc2 += rb * rb / (sa2 * mb + v)
    return acc, acc2


@njit(nogil=True, cache=True, error_model="numpy")
def _fast_ok(legacy, s, sa, lo_k, hi_k, vmin_j):  # pragma: no cover - compiled
    """Whether the unchecked sum is exact for this (object, model) (default mode)."""
    if legacy:
        return True
    lo = sa * lo_k if sa >= 0.0 else sa * hi_k
    return lo + vmin_j > 0.0 and s == s and abs(s) < np.inf


@njit(nogil=True, cache=True, error_model="numpy", fastmath={"reassoc", "contract", "nsz"})
def _sum_runs4(m0, m1, m2, m3, start, length, p0, p1):  # pragma: no cover - compiled
    """F_k of four models in one pass over the runs."""
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    for r in range(p0, p1):
        n = length[r]
        st = start[r]
        b0 = m0[st:st + n]
        b1 = m1[st:st + n]
        b2 = m2[st:st + n]
        b3 = m3[st:st + n]
        for i in range(n):
            a0 += b0[i]
            a1 += b1[i]
            a2 += b2[i]
            a3 += b3[i]
    return a0, a1, a2, a3


@njit(nogil=True, cache=True, error_model="numpy", fastmath={"reassoc", "contract", "nsz"})
def _chi_sum4(m0, m1, m2, m3, start, length, off, p0, p1, d, rms, s0, s1, s2, s3,
              a):  # pragma: no cover - compiled
    """:func:`_chi_sum` of four models in one pass (data read once, a quarter of the loop
    overhead per model on short runs)."""
    a0 = 0.0
    a1 = 0.0
    a2 = 0.0
    a3 = 0.0
    q0 = s0 * a
    q1 = s1 * a
    q2 = s2 * a
    q3 = s3 * a
    for r in range(p0, p1):
        n = length[r]
        st = start[r]
        b0 = m0[st:st + n]
        b1 = m1[st:st + n]
        b2 = m2[st:st + n]
        b3 = m3[st:st + n]
        dd = d[off[r]:off[r] + n]
        rr = rms[off[r]:off[r] + n]
        for i in range(n):
            dv = np.float64(dd[i])
            sg = np.float64(rr[i])
            v = sg * sg
            x = np.float64(b0[i])
            t = dv - s0 * x
            a0 += t * t / (q0 * x + v)
            x = np.float64(b1[i])
            t = dv - s1 * x
            a1 += t * t / (q1 * x + v)
            x = np.float64(b2[i])
            t = dv - s2 * x
            a2 += t * t / (q2 * x + v)
            x = np.float64(b3[i])
            t = dv - s3 * x
            a3 += t * t / (q3 * x + v)
    return a0, a1, a2, a3


@njit(nogil=True, cache=True, error_model="numpy")
def _finish(models, kk, j, acc, ok, s, a, ch_start, ch_len, ch_off, c0, c1, d, rms, tot, legacy,
            ddof, out, nexcl):  # pragma: no cover - compiled
    """Write chi[j, kk]; redo it with the checked sum when the fast one was not allowed or NaN."""
    cnt = tot[j]
    if not ok or acc != acc:
        acc, cnt = _chi_sum_checked(models[kk], ch_start, ch_len, ch_off, c0, c1, d, rms, s,
                                    s * a, legacy)
        if not legacy:
            nexcl[j] += tot[j] - cnt
    dn = cnt - ddof
    out[j, kk] = acc / dn if dn > 0 else np.nan


@njit(nogil=True, cache=True, error_model="numpy")
def _chi2_runs(models, mlo, mhi, fk_start, fk_len, fk_ptr, ch_start, ch_len, ch_off, ch_ptr,
               d, rms, fd, tot, vmin, a, legacy, ddof, tile, out, nexcl):  # pragma: no cover
    """Models in tiles (outer), objects, models of the tile: a tile of model stamps stays in
    cache for all the objects of the block, an object's data for all the models of a tile.
    Models go four (then two) at a time through one pass over the runs. The unchecked,
    vectorised sum is used when it cannot meet a term to leave out: default mode when the
    variance is provably positive (from the object's smallest rms^2 and the model's extreme
    values), legacy mode when the sum is not NaN; otherwise the checked sum redoes that
    (object, model)."""
    nmod = models.shape[0]
    nobj = fd.shape[0]
    for k0 in range(0, nmod, tile):
        k1 = min(nmod, k0 + tile)
        for j in range(nobj):
            f0, f1 = fk_ptr[j], fk_ptr[j + 1]
            c0, c1 = ch_ptr[j], ch_ptr[j + 1]
            k = k0
            while k + 4 <= k1:
                F0, F1, F2, F3 = _sum_runs4(models[k], models[k + 1], models[k + 2],
                                            models[k + 3], fk_start, fk_len, f0, f1)
                s0 = fd[j] / F0
                s1 = fd[j] / F1
                s2 = fd[j] / F2
                s3 = fd[j] / F3
                ok0 = _fast_ok(legacy, s0, s0 * a, mlo[k], mhi[k], vmin[j])
                ok1 = _fast_ok(legacy, s1, s1 * a, mlo[k + 1], mhi[k + 1], vmin[j])
                ok2 = _fast_ok(legacy, s2, s2 * a, mlo[k + 2], mhi[k + 2], vmin[j])
                ok3 = _fast_ok(legacy, s3, s3 * a, mlo[k + 3], mhi[k + 3], vmin[j])
                A0 = A1 = A2 = A3 = np.nan
                if ok0 and ok1 and ok2 and ok3:
                    A0, A1, A2, A3 = _chi_sum4(models[k], models[k + 1], models[k + 2],
                                               models[k + 3], ch_start, ch_len, ch_off, c0, c1,
                                               d, rms, s0, s1, s2, s3, a)
                _finish(models, k, j, A0, ok0 and ok1 and ok2 and ok3, s0, a, ch_start, ch_len,
                        ch_off, c0, c1, d, rms, tot, legacy, ddof, out, nexcl)
                _finish(models, k + 1, j, A1, ok0 and ok1 and ok2 and ok3, s1, a, ch_start,
                        ch_len, ch_off, c0, c1, d, rms, tot, legacy, ddof, out, nexcl)
                _finish(models, k + 2, j, A2, ok0 and ok1 and ok2 and ok3, s2, a, ch_start,
                        ch_len, ch_off, c0, c1, d, rms, tot, legacy, ddof, out, nexcl)
                _finish(models, k + 3, j, A3, ok0 and ok1 and ok2 and ok3, s3, a, ch_start,
                        ch_len, ch_off, c0, c1, d, rms, tot, legacy, ddof, out, nexcl)
                k += 4
            while k < k1:
                pair = k + 1 < k1
                if pair:
                    fka, fkb = _sum_runs2(models[k], models[k + 1], fk_start, fk_len, f0, f1)
                else:
                    fka = _sum_runs(models[k], fk_start, fk_len, f0, f1)
                    fkb = 1.0
                sA = fd[j] / fka
                sB = fd[j] / fkb
                okA = _fast_ok(legacy, sA, sA * a, mlo[k], mhi[k], vmin[j])
                okB = pair and _fast_ok(legacy, sB, sB * a, mlo[k + 1], mhi[k + 1], vmin[j])
                accA = np.nan
                accB = np.nan
                if okA and okB:
                    accA, accB = _chi_sum2(models[k], models[k + 1], ch_start, ch_len, ch_off,
                                           c0, c1, d, rms, sA, sA * a, sB, sB * a)
                elif okA:
                    accA = _chi_sum(models[k], ch_start, ch_len, ch_off, c0, c1, d, rms,
                                    sA, sA * a)
                _finish(models, k, j, accA, okA, sA, a, ch_start, ch_len,
                        ch_off, c0, c1, d, rms, tot, legacy, ddof, out, nexcl)
                if pair:
                    _finish(models, k + 1, j, accB, okA and okB, sB, a, ch_start, ch_len,
                            ch_off, c0, c1, d, rms, tot, legacy, ddof, out, nexcl)
                k += 2


#: models per tile of the compiled loop (8 stamps of 128^2 float32 = 512 KiB, an L2's worth)
_TILE = 8


def _runs(mask2d: np.ndarray, box):
    """Runs of consecutive True pixels along rows: (flat start, length, ptr) in C order.

    One ``flatnonzero`` over the row transitions: starts and ends alternate along each row.
    """
    n = mask2d.shape[0]
    by, bx = box
    p = np.zeros((n, by, bx + 1), np.bool_)
    p[:, :, :bx] = mask2d.reshape(n, by, bx)
    edge = p.copy()
    edge[:, :, 1:] ^= p[:, :, :-1]  # True where the mask changes (x = position of the change)
    nz = np.flatnonzero(edge)
    s, e = nz[0::2], nz[1::2]
    row, sx = np.divmod(s, bx + 1)
    length = (e - s).astype(np.int64)
    so = row // by
    start = ((row % by) * bx + sx).astype(np.int64)
    ptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(so, minlength=n), out=ptr[1:])
    return start, length, ptr


def _prepare_cpu(obj, mask, rms, mode, box):
    """The CPU kernel's inputs, computed on the mask pixels only (no full-stamp temporaries)."""
    n = obj.shape[0]
    m = mask.reshape(n, -1)
    fk_start, fk_len, fk_ptr = _runs(m, box)
    o, pix = np.nonzero(m)  # C order = run order
    dm = obj.reshape(n, -1)[o, pix]
    rm = rms.reshape(n, -1)[o, pix]
    if mode == "legacy":
        good = ~(np.isnan(dm) | np.isnan(rm))
        fd = np.bincount(o, weights=np.where(np.isnan(dm), 0.0, dm), minlength=n)
    else:
        good = np.isfinite(dm) & np.isfinite(rm)
        fd = np.bincount(o, weights=np.where(good, dm, 0.0), minlength=n)
    tot = np.bincount(o, weights=good, minlength=n).astype(np.int64)
    r2 = np.where(good, rm.astype(np.float64) ** 2, np.inf)
    vmin = np.full(n, np.inf)
    if r2.size:
        nonempty = fk_ptr[1:] > fk_ptr[:-1]
        firsts = np.searchsorted(o, np.arange(n)[nonempty])
        vmin[nonempty] = np.minimum.reduceat(r2, firsts)
    if good.all():
        ch = (fk_start, fk_len, fk_ptr)
        dc, rc = dm, rm
    else:
        valid = np.zeros(m.shape, bool)
        valid[o[good], pix[good]] = True
        ch = _runs(valid, box)
        dc, rc = dm[good], rm[good]
        if mode != "legacy":
            fk_start, fk_len, fk_ptr = ch
    ch_start, ch_len, ch_ptr = ch
    ch_off = np.zeros(ch_len.shape[0], np.int64)
    if ch_len.shape[0] > 1:
        np.cumsum(ch_len[:-1], out=ch_off[1:])
    dc = np.ascontiguousarray(dc, dtype=np.float32)
    rc = np.ascontiguousarray(rc, dtype=np.float32)
    return (fk_start, fk_len, fk_ptr, ch_start, ch_len, ch_off, ch_ptr, dc, rc,
            np.ascontiguousarray(fd, dtype=np.float64), tot, vmin)


def _chi2_numba(models2d, box, obj, rms, mask, mode, a, ddof, model_range):
    """CPU kernel: (chi (N, K) float64, flux, npix, n_excluded)."""
    n = obj.shape[0]
    (fk_start, fk_len, fk_ptr, ch_start, ch_len, ch_off, ch_ptr, dc, rc, fd, tot,
     vmin) = _prepare_cpu(obj, mask, rms, mode, box)
    if model_range is None:
        model_range = model_extremes(models2d)
    mlo, mhi = (np.ascontiguousarray(x, dtype=np.float64) for x in model_range)
    if mlo.shape != (models2d.shape[0],) or mhi.shape != (models2d.shape[0],):
        raise ParameterError(f"model_range must be two arrays of {models2d.shape[0]} values")
    out = np.empty((n, models2d.shape[0]), np.float64)
    nexcl = np.zeros(n, np.int64)
    _chi2_runs(models2d, mlo, mhi, fk_start, fk_len, fk_ptr, ch_start, ch_len, ch_off, ch_ptr,
               dc, rc, fd, tot, vmin, float(a), mode == "legacy", int(ddof), _TILE, out, nexcl)
    return out, fd, tot, nexcl


def model_extremes(models: Any) -> tuple[Any, Any]:
    """Per-model minimum and maximum (float64), which decide the kernel's unchecked fast path.

    :func:`lazyastro.dre.chi2` computes them once per cube (one graph task) and passes them to
    every block; a direct :func:`chi2_block` call computes them when not given.

    Examples
    --------
    >>> lo, hi = model_extremes(np.arange(8, dtype="f4").reshape(2, 2, 2))
    >>> lo.tolist(), hi.tolist()
    ([0.0, 4.0], [3.0, 7.0])
    """
    xp = array_namespace(models)
    m = xp.asarray(models)
    m = m.reshape(m.shape[0], -1) if m.ndim == 2 else m.reshape(-1, m.shape[-2] * m.shape[-1])
    return m.min(axis=1).astype(xp.float64), m.max(axis=1).astype(xp.float64)


# --------------------------------------------------------------------------- CUDA form

_CUDA_SOURCE = r"""
extern "C" __global__
void dre_chi2(const float* __restrict__ models, const long long npix, const int nmod,
              const int* __restrict__ fk_idx, const long long* __restrict__ fk_ptr,
              const int* __restrict__ ch_idx, const long long* __restrict__ ch_ptr,
              const double* __restrict__ d, const double* __restrict__ v,
              const double* __restrict__ fd, const double a, const int legacy, const int ddof,
              double* __restrict__ out, unsigned long long* __restrict__ nexcl)
{
    const int warps = blockDim.x >> 5;
    const int lane = threadIdx.x & 31;
    const int k = blockIdx.x * warps + (threadIdx.x >> 5);
    const int j = blockIdx.y;
    if (k >= nmod) return;
    const float* mk = models + (long long)k * npix;
    double fk = 0.0;
    for (long long p = fk_ptr[j] + lane; p < fk_ptr[j + 1]; p += 32) fk += (double)mk[fk_idx[p]];
    for (int o = 16; o > 0; o >>= 1) fk += __shfl_xor_sync(0xffffffffu, fk, o);
    const double s = fd[j] / fk;
    const double sa = s * a;
    double acc = 0.0;
    long long cnt = 0;
    for (long long p = ch_ptr[j] + lane; p < ch_ptr[j + 1]; p += 32) {
        const double m = (double)mk[ch_idx[p]];
        const double r = d[p] - s * m;
        const double den = sa * m + v[p];
        const double t = r * r / den;
        const bool ok = legacy ? !isnan(t) : (den > 0.0 && !isnan(t));
        if (ok) { acc += t; cnt += 1; }
    }
    for (int o = 16; o > 0; o >>= 1) {
        acc += __shfl_xor_sync(0xffffffffu, acc, o);
        cnt += __shfl_xor_sync(0xffffffffu, cnt, o);
    }
    if (lane == 0) {
        const long long dn = cnt - ddof;
        out[(long long)j * nmod + k] = dn > 0 ? acc / (double)dn : __longlong_as_double(0x7ff8000000000000LL);
        if (!legacy) atomicAdd(&nexcl[j], (unsigned long long)((ch_ptr[j + 1] - ch_ptr[j]) - cnt));
    }
}
"""

_CUDA_KERNEL = None


def _cuda_kernel():
    global _CUDA_KERNEL
    if _CUDA_KERNEL is None:
        import cupy

        _CUDA_KERNEL = cupy.RawKernel(_CUDA_SOURCE, "dre_chi2")
    return _CUDA_KERNEL


def _chi2_cuda(models2d, d, v, fk_mask, valid, fd, a, legacy, ddof):
    import cupy as cp

    n = fd.shape[0]
    nmod, npix = models2d.shape

    def lists(mask):
        o, p = cp.nonzero(mask)
        ptr = cp.zeros(n + 1, cp.int64)
        ptr[1:] = cp.cumsum(cp.bincount(o, minlength=n))
        return p.astype(cp.int32), ptr

    fk_idx, fk_ptr = lists(fk_mask)
    ch_idx, ch_ptr = lists(valid) if legacy else (fk_idx, fk_ptr)
    dc = cp.ascontiguousarray(d[valid])
    vc = cp.ascontiguousarray(v[valid])
    out = cp.empty((n, nmod), cp.float64)
    nexcl = cp.zeros(n, cp.uint64)
    warps = 8
    grid = ((nmod + warps - 1) // warps, n)
    _cuda_kernel()(grid, (32 * warps,),
                   (models2d, np.int64(npix), np.int32(nmod), fk_idx, fk_ptr, ch_idx, ch_ptr,
                    dc, vc, cp.ascontiguousarray(fd), np.float64(a), np.int32(bool(legacy)),
                    np.int32(ddof), out, nexcl))
    return out, nexcl.astype(cp.int64)


# --------------------------------------------------------------------------- public kernels


def chi2_block(obj: Any, mask: Any, rms: Any, models: Any, *, mode: str = "default",
               variance: str = "model", psf_sum_sq: float | None = None,
               exposure: float = 1.0, ddof: int = 0,
               model_range: tuple[Any, Any] | None = None) -> Chi2Result:
    """Chi^2 of every object of a block against every model, in one compiled pass.

    Parameters
    ----------
    obj, mask, rms : array (N, B, B) or (B, B)
        Data, mask (bool; non-zero is True) and rms of the objects.
    models : array (..., B, B)
        Convolved model stamps (float32 preferred: read in place when C-contiguous). Its
        array module (numpy or CuPy) picks the form; the objects are moved to it.
    mode : {"default", "legacy"}
        See the module docstring.
    variance : {"model", "psf"}
        ``"model"``: ``s m + sigma^2``; ``"psf"``: ``s m psf_sum_sq / exposure + sigma^2``.
    psf_sum_sq : float, optional
        ``sum(PSF^2)`` (needed by ``variance="psf"``).
    exposure : float
        ``t_exp`` of the ``"psf"`` variance.
    ddof : int
        Default mode: the mean divides by ``count - ddof`` (must be 0 in legacy mode).
    model_range : (array, array), optional
        :func:`model_extremes` of ``models`` if already known (saves a pass over the cube).

    Returns
    -------
    Chi2Result
        ``chi`` (N, K) float32 with K = the product of the leading model axes, ``flux``,
        ``npix``, ``n_excluded``.

    Raises
    ------
    ParameterError
        Unknown mode/variance, cut shape not the model box (naming ``obj``/``seg``/``rms``),
        ``variance="psf"`` without a positive ``psf_sum_sq``, ``ddof`` in legacy mode.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.ones((2, 4, 4), "f4"); m[1, 0, 0] = 5.0
    >>> obj = np.ones((1, 4, 4), "f4"); seg = np.ones((1, 4, 4), bool); rms = np.ones((1, 4, 4), "f4")
    >>> r = chi2_block(obj, seg, rms, m)
    >>> r.chi.shape, float(r.chi[0, 0]), int(r.npix[0])
    ((1, 2), 0.0, 16)
    """
    check_mode(mode)
    a = _variance_factor(variance, psf_sum_sq, exposure)
    ddof = int(ddof)
    if ddof < 0 or (mode == "legacy" and ddof):
        raise ParameterError(f"ddof must be 0 in legacy mode and >= 0 otherwise, got {ddof}")
    xp = array_namespace(models)
    models2d, box = _models_2d(models, xp)
    obj, mask, rms = _objects(obj, mask, rms, xp, box)
    if is_cupy(models2d):
        d, v, fk_mask, valid, fd = _prepare(obj, mask, rms, xp, mode)
        out, nexcl = _chi2_cuda(models2d, d, v, fk_mask, valid, fd, a, mode == "legacy", ddof)
        npix = valid.sum(axis=1).astype(xp.int64)
    else:
        out, fd, npix, nexcl = _chi2_numba(models2d, box, obj, rms, mask, mode, a, ddof,
                                           model_range)
    return Chi2Result(out.astype(xp.float32), fd, npix, nexcl)


def chi2_gather(obj: Any, mask: Any, rms: Any, models: Any, *, mode: str = "legacy",
                variance: str = "model", psf_sum_sq: float | None = None,
                exposure: float = 1.0) -> Any:
    """The legacy per-object algorithm with whole-array passes (reference and baseline).

    For each object: gather the mask pixels of every model into a ``(K, Npix)`` float64
    array, then ``F_k``, ``s_k``, the residual, the variance, the ratio and the (nan)mean as
    separate array passes. Runs on numpy or CuPy (the module of ``models``).

    Parameters
    ----------
    obj, mask, rms, models, mode, variance, psf_sum_sq, exposure
        As :func:`chi2_block` (no ``ddof``).

    Returns
    -------
    array (N, K) float64
        The chi^2, same numbers as :func:`chi2_block` to float64 rounding.

    Examples
    --------
    >>> import numpy as np
    >>> m = np.ones((2, 4, 4), "f4"); m[1, 0, 0] = 5.0
    >>> obj = np.ones((1, 4, 4)); seg = np.ones((1, 4, 4), bool); rms = np.ones((1, 4, 4))
    >>> float(chi2_gather(obj, seg, rms, m)[0, 0])
    0.0
    """
    check_mode(mode)
    a = _variance_factor(variance, psf_sum_sq, exposure)
    xp = array_namespace(models)
    by, bx = xp.asarray(models).shape[-2:]
    models3 = xp.asarray(models).reshape(-1, by, bx)
    obj, mask, rms = _objects(obj, mask, rms, xp, (by, bx))
    out = xp.empty((obj.shape[0], models3.shape[0]), xp.float64)
    for j in range(obj.shape[0]):
        iy, ix = xp.nonzero(mask[j])
        dj = obj[j][iy, ix].astype(xp.float64)
        vj = rms[j][iy, ix].astype(xp.float64) ** 2
        mk = models3[:, iy, ix].astype(xp.float64)  # (K, Npix): the legacy gather
        if mode == "legacy":
            fd = xp.nansum(dj)
        else:
            ok = xp.isfinite(dj) & xp.isfinite(vj)
            dj, vj, mk = dj[ok], vj[ok], mk[:, ok]
            fd = xp.sum(dj)
        with np.errstate(invalid="ignore", divide="ignore"):
            fk = mk.sum(axis=1)
            s = (fd / fk)[:, None]
            sm = s * mk
            den = a * sm + vj
            t = (dj - sm) ** 2 / den
            if mode == "legacy":
                cnt = (~xp.isnan(t)).sum(axis=1)
                tot = xp.where(xp.isnan(t), 0.0, t).sum(axis=1)
            else:
                good = den > 0
                cnt = good.sum(axis=1)
                tot = xp.where(good, t, 0.0).sum(axis=1)
            out[j] = xp.where(cnt > 0, tot / xp.maximum(cnt, 1), xp.nan)
    return out


def chi2_dense(obj: Any, mask: Any, rms: Any, models: Any, *, mode: str = "default",
               variance: str = "model", psf_sum_sq: float | None = None,
               exposure: float = 1.0) -> Any:
    """The dense form: masked contractions over all pixels as matrix products.

    With ``W`` the mask as 0/1 weights, ``F_k = W @ m^T`` is one matrix product; the chi^2
    sum cannot be expanded into products (the variance depends on ``s_k``), so it runs
    over ``(object, model, pixel)`` in slabs of models, masked by ``W``. Worth it only for
    masks covering a large part of the stamp; numpy or CuPy.

    Parameters
    ----------
    obj, mask, rms, models, mode, variance, psf_sum_sq, exposure
        As :func:`chi2_block` (no ``ddof``).

    Returns
    -------
    array (N, K) float64

    Examples
    --------
    >>> import numpy as np
    >>> m = np.ones((2, 4, 4), "f4"); m[1, 0, 0] = 5.0
    >>> obj = np.ones((1, 4, 4)); seg = np.ones((1, 4, 4), bool); rms = np.ones((1, 4, 4))
    >>> float(chi2_dense(obj, seg, rms, m)[0, 0])
    0.0
    """
    check_mode(mode)
    a = _variance_factor(variance, psf_sum_sq, exposure)
    xp = array_namespace(models)
    models2d, box = _models_2d(models, xp)
    obj, mask, rms = _objects(obj, mask, rms, xp, box)
    d, v, fk_mask, valid, fd = _prepare(obj, mask, rms, xp, mode)
    m64 = models2d.astype(xp.float64)
    fk = fk_mask.astype(xp.float64) @ m64.T  # (N, K)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = fd[:, None] / fk
    d0 = xp.where(valid, d, 0.0)
    v0 = xp.where(valid, v, 1.0)
    w = valid.astype(xp.float64)
    n, nmod = fk.shape
    out = xp.empty((n, nmod), xp.float64)
    step = max(1, (1 << 22) // max(1, n * models2d.shape[1]))
    with np.errstate(invalid="ignore", divide="ignore"):
        for k0 in range(0, nmod, step):
            sk = s[:, k0:k0 + step, None]
            sm = sk * m64[None, k0:k0 + step]
            den = a * sm + v0[:, None]
            t = (d0[:, None] - sm) ** 2 / den
            if mode == "legacy":
                good = (w[:, None] > 0) & ~xp.isnan(t)
            else:
                good = (w[:, None] > 0) & (den > 0)
            cnt = good.sum(axis=2)
            tot = xp.where(good, t, 0.0).sum(axis=2)
            out[:, k0:k0 + step] = xp.where(cnt > 0, tot / xp.maximum(cnt, 1), xp.nan)
    return out
