"""GPU check of the DRE chi^2: the CuPy/CUDA path against the CPU kernel, and objects/s.

Run on a machine with an NVIDIA GPU and CuPy (``pip install cupy-cuda12x``), from the
repository root::

    python benchmarks/dre_gpu_check.py            # legacy-size cube, masks 300/1500/5000 px
    python benchmarks/dre_gpu_check.py --quick    # fewer objects

1. Correctness: random objects (NaN pixels, a negative-flux and an all-NaN object) against
   a small random cube: :func:`lazyastro.dre.kernels.chi2_block` with a CuPy cube (the CUDA
   kernel) vs the same call with a numpy cube (the compiled CPU kernel), both modes and both
   variances; the CuPy gather form (:func:`~lazyastro.dre.kernels.chi2_gather`, the batched
   elementwise reference); and the lazy :func:`lazyastro.dre.chi2` with a GPU-resident cube
   vs the CPU graph. Reports the largest relative difference and whether the argmins agree.
2. Speed: objects/s of the CUDA kernel on the legacy-size cube (2730 models of 128 x 128,
   resident on the GPU) for each mask size, with the objects already on the GPU and copied
   from the host per batch, next to the CPU kernel (one thread) on a few objects.

Prints markdown tables; exit status 1 if a correctness check fails, 2 without a GPU.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

GRID = (1, 10, 13, 21)
B = 128


def _cupy():
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no device")
        return cupy
    except Exception as exc:  # noqa: BLE001 - any failure means "no usable GPU"
        print(f"dre_gpu_check: no usable CuPy GPU ({type(exc).__name__}: {exc})")
        sys.exit(2)


def _objects(rng, cube, n, npix, *, awkward=False):
    flat = cube.reshape(-1, B, B)
    yy, xx = np.mgrid[:B, :B] - B // 2
    obj = np.empty((n, B, B), np.float32)
    seg = np.empty((n, B, B), bool)
    rms = np.empty((n, B, B), np.float32)
    for i in range(n):
        q = 0.5 + 0.5 * rng.random()
        t = np.pi * rng.random()
        xp, yp = xx * np.cos(t) + yy * np.sin(t), -xx * np.sin(t) + yy * np.cos(t)
        a = np.sqrt(npix / (np.pi * q))
        seg[i] = xp**2 + (yp / q) ** 2 < a * a
        sigma = 0.05 + 0.01 * rng.random((B, B))
        obj[i] = 1e3 * flat[rng.integers(flat.shape[0])] + sigma * rng.standard_normal((B, B))
        rms[i] = sigma
    if awkward and n >= 4:
        bad = rng.random((n, B, B)) < 0.03
        obj[bad & (rng.random((n, B, B)) < 0.5)] = np.nan
        rms[bad & (rng.random((n, B, B)) < 0.5)] = np.nan
        obj[1] *= -1.0
        obj[2] = np.nan
    return obj, seg, rms


def _rel(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    same_nan = bool(np.array_equal(np.isnan(a), np.isnan(b)))
    ok = np.isfinite(a) & np.isfinite(b)
    rel = float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), 1e-30))) if ok.any() else 0.0
    arg = all(np.nanargmin(x) == np.nanargmin(y) for x, y in zip(a, b) if np.isfinite(y).any())
    return rel, same_nan, arg


def correctness(cp) -> bool:
    import dask
    import xarray as xr

    from lazyastro.core.backend import to_numpy
    from lazyastro.dre import chi2
    from lazyastro.dre.kernels import chi2_block, chi2_gather

    rng = np.random.default_rng(0)
    cube = (rng.random((1, 3, 4, 5, B, B), dtype=np.float32) + 0.01)
    gcube = cp.asarray(cube)
    obj, seg, rms = _objects(rng, cube, 12, 1500, awkward=True)
    rows, good = [], True
    for mode in ("legacy", "default"):
        for variance in ("model", "psf"):
            kw = {"mode": mode, "variance": variance, "psf_sum_sq": 0.02, "exposure": 3.0}
            cpu = chi2_block(obj, seg, rms, cube, **kw)
            gpu = chi2_block(obj, seg, rms, gcube, **kw)
            rel, same_nan, arg = _rel(to_numpy(gpu.chi), cpu.chi)
            flux_ok = np.allclose(to_numpy(gpu.flux), cpu.flux, rtol=1e-12, equal_nan=True)
            cnt_ok = (np.array_equal(to_numpy(gpu.npix), cpu.npix)
                      and np.array_equal(to_numpy(gpu.n_excluded), cpu.n_excluded))
            ok = rel < 1e-5 and same_nan and arg and flux_ok and cnt_ok
            good &= ok
            rows.append((f"CUDA kernel vs CPU kernel ({mode}, {variance})", rel, same_nan, arg, ok))
    ref = chi2_gather(obj, seg, rms, cube, mode="legacy")
    gat = chi2_gather(obj, seg, rms, gcube, mode="legacy")
    rel, same_nan, arg = _rel(to_numpy(gat), ref)
    ok = rel < 1e-9 and same_nan and arg
    good &= ok
    rows.append(("CuPy gather form vs numpy gather form (legacy)", rel, same_nan, arg, ok))
    dims = ("n", "q", "theta", "log_r", "y", "x")
    coords = {d: np.arange(s, dtype=float) for d, s in zip(dims[:4], cube.shape[:4])}
    cuts = xr.Dataset({"obj": (("object", "y", "x"), obj), "seg": (("object", "y", "x"), seg),
                       "rms": (("object", "y", "x"), rms)})
    with dask.config.set(scheduler="threads", num_workers=2):
        lazy_cpu = chi2(xr.DataArray(cube, dims=dims, coords=coords), cuts, objects_per_block=5)
        lazy_gpu = chi2(xr.DataArray(gcube, dims=dims, coords=coords), cuts, objects_per_block=5)
        a = np.asarray(lazy_cpu.data.compute())
        b = to_numpy(lazy_gpu.data.compute())
    rel, same_nan, arg = _rel(b.reshape(len(b), -1), a.reshape(len(a), -1))
    ok = rel < 1e-5 and same_nan and arg
    good &= ok
    rows.append(("lazy chi2, GPU-resident cube vs CPU graph (default)", rel, same_nan, arg, ok))
    print("| check | max rel diff | same NaNs | same argmin | ok |")
    print("|---|---:|---|---|---|")
    for name, rel, same_nan, arg, ok in rows:
        print(f"| {name} | {rel:.2e} | {same_nan} | {arg} | {'yes' if ok else 'NO'} |")
    print()
    return good


def speed(cp, quick: bool) -> None:
    from lazyastro.dre.kernels import chi2_block

    rng = np.random.default_rng(1)
    cube = rng.random((int(np.prod(GRID)), B, B), dtype=np.float32) + 0.01
    cube.flags.writeable = False
    gcube = cp.asarray(cube)
    dev = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(f"GPU {dev}; cube 2730 x {B}x{B} float32 resident on the GPU")
    print()
    print("| mask px | batch | GPU objects/s (data on GPU) | GPU objects/s (host data) | CPU kernel objects/s (1 thread) | GPU / CPU |")
    print("|---:|---:|---:|---:|---:|---:|")
    for npix in (300, 1500, 5000):
        batch = 256 if quick else 1024
        obj, seg, rms = _objects(rng, cube, batch, npix)
        gobj, gseg, grms = cp.asarray(obj), cp.asarray(seg), cp.asarray(rms)
        chi2_block(gobj[:8], gseg[:8], grms[:8], gcube, mode="legacy")  # compile
        cp.cuda.Device().synchronize()
        best_dev = best_host = np.inf
        for _ in range(1 if quick else 3):
            t0 = time.perf_counter()
            r = chi2_block(gobj, gseg, grms, gcube, mode="legacy")
            cp.cuda.Device().synchronize()
            best_dev = min(best_dev, time.perf_counter() - t0)
            t0 = time.perf_counter()
            r = chi2_block(obj, seg, rms, gcube, mode="legacy")
            _ = cp.asnumpy(r.chi)
            best_host = min(best_host, time.perf_counter() - t0)
        ncpu = 4
        chi2_block(obj[:1], seg[:1], rms[:1], cube, mode="legacy")
        t0 = time.perf_counter()
        chi2_block(obj[:ncpu], seg[:ncpu], rms[:ncpu], cube, mode="legacy")
        cpu_rate = ncpu / (time.perf_counter() - t0)
        print(f"| {int(seg.sum((1, 2)).mean())} | {batch} | {batch / best_dev:.0f} | {batch / best_host:.0f} | "
              f"{cpu_rate:.1f} | {batch / best_dev / cpu_rate:.0f} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    args = ap.parse_args(argv)
    cp = _cupy()
    good = correctness(cp)
    if not args.skip_speed:
        speed(cp, args.quick)
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
