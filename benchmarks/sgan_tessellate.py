"""Benchmark: seam-free tessellation (``lazyastro.sgan.tessellate`` -> Zarr) vs one-shot generation.

For each mosaic size it prints the output megapixels per second and the peak RSS of a tiled
mosaic streamed to Zarr, next to (same run, same model):

- one-shot generation (the whole noise field in one generator call) of the largest size that
  fits ``--one-shot-max``: the tiling overhead is the ratio of the time per pixel;
- the raw generator on one tile's noise (no halo, no noise generation, no writing): the
  limit; and TensorFlow's own call of the same Keras model on the same noise, for reference
  (lazyastro evaluates the layers itself so that tiles equal one-shot bit for bit);
- the projected time of a 60k x 60k mosaic at the measured tiled throughput.

Each case runs in a fresh subprocess (peak RSS = ``VmHWM`` after resetting the mark, i.e. the
memory the case needs on top of the interpreter). ``cpu/wall`` is the CPU time per wall
second (about the number of cores really used). The model is the built-in generator
(``--model`` for another; ``--reference`` for the spec's reference architecture with random
weights, which runs at the same speed as a trained one).

    python benchmarks/sgan_tessellate.py                        # 2048 and 4096, one-shot 2048
    python benchmarks/sgan_tessellate.py --sizes 4096,16384,32768 --one-shot-max 8192
    python benchmarks/sgan_tessellate.py --sizes 4096,32768 --one-shot-max 4096   # the issue-10 table (~70 min)

The evaluator runs its products on one BLAS thread (its pixels must not depend on the thread
count), so one-shot generation uses one core; the like-for-like tiling overhead is the one-core
tiled row (sync scheduler) against one-shot.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def _model(case: dict):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if case.get("reference"):
        import keras

        from lazyastro.sgan.model import build_generator

        keras.utils.set_random_seed(0)
        g = build_generator()
        from types import SimpleNamespace

        meta = {"bands": ["b0", "b1", "b2"], "band_min": [0.0] * 3, "band_max": [1.0] * 3, "noise_channels": 50}
        return SimpleNamespace(generator=g, meta=meta)
    from lazyastro.sgan.model import load_model

    return load_model(case.get("model"))


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def worker(case: dict) -> None:
    import numpy as np

    from lazyastro.core.memory import peak_rss, reset_peak_rss

    model = _model(case)
    import lazyastro
    from lazyastro.sgan import kernels as K
    from lazyastro.sgan import tessellate
    from lazyastro.sgan.noise import noise_window
    from lazyastro.sgan.receptive import generator_layers

    reset_peak_rss()
    base = peak_rss()
    kind, size, tile = case["kind"], case["size"], case["tile"]
    if kind in ("raw", "raw-tf"):
        n = -(-tile // 16)
        z = noise_window((n, n), (slice(0, n), slice(0, n)), channels=int(model.meta["noise_channels"]), seed=1)
        layers = generator_layers(model.generator)
        c0, t0 = _cpu(), time.perf_counter()
        if kind == "raw":
            K.run_layers(layers, z)
        else:
            np.asarray(model.generator(z[None], training=False))
        dt, cpu, pixels = time.perf_counter() - t0, _cpu() - c0, (16 * n) ** 2
    else:
        with tempfile.TemporaryDirectory(dir=case.get("tmp")) as tmp:
            c0, t0 = _cpu(), time.perf_counter()
            m = tessellate(model, size=size, seed=3, tile=tile, one_shot=kind == "one-shot")
            sched = "sync" if kind == "tiled-1" else case.get("scheduler", "threads")
            lazyastro.to_zarr(m, os.path.join(tmp, "m.zarr"), chunks=(m.shape[0], tile, tile),
                              scheduler=sched, progress=False)
            dt, cpu, pixels = time.perf_counter() - t0, _cpu() - c0, size * size
    print(json.dumps({"seconds": dt, "pixels": pixels, "peak": peak_rss() - base, "cpu": cpu}))


def _run(case: dict) -> dict:
    res = subprocess.run([sys.executable, __file__, "--worker", json.dumps(case)], capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"case {case} failed:\n{res.stderr[-3000:]}")
    return {**case, **json.loads(res.stdout.strip().splitlines()[-1])}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2048,4096", help="mosaic sides, comma-separated (default 2048,4096)")
    ap.add_argument("--tile", type=int, default=1072, help="tile side (default 1072, the tessellate default)")
    ap.add_argument("--one-shot-max", type=int, default=2048, help="largest size generated one-shot (default 2048)")
    ap.add_argument("--model", default=None, help="generator .keras file (default: the built-in model)")
    ap.add_argument("--reference", action="store_true", help="the reference architecture, random weights")
    ap.add_argument("--scheduler", default="threads")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return
    from lazyastro.sgan.tiling import halo_cost

    sizes = [int(s) for s in args.sizes.split(",")]
    common = {"tile": args.tile, "model": args.model, "reference": args.reference, "scheduler": args.scheduler}
    load = os.getloadavg()[0]
    rows = [_run({**common, "kind": "raw", "size": args.tile}), _run({**common, "kind": "raw-tf", "size": args.tile})]
    shots = [s for s in sizes if s <= args.one_shot_max] or [min(args.one_shot_max, min(sizes))]
    one = _run({**common, "kind": "one-shot", "size": max(shots)})
    # the evaluator runs on one BLAS thread (its bits must not depend on the thread count), so
    # one-shot uses one core: the like-for-like tiled run is the sync scheduler (one core too)
    tiled1 = _run({**common, "kind": "tiled-1", "size": max(shots)})
    tiled = [_run({**common, "kind": "tiled", "size": s}) for s in sizes]
    rows += [one, tiled1] + tiled

    def rate(r):
        return r["pixels"] / 1e6 / r["seconds"]

    print(f"\nsgan tessellation: {'reference architecture' if args.reference else args.model or 'built-in model'}, "
          f"tile {args.tile}, scheduler {args.scheduler}, load average {load:.1f} before the run\n")
    print("| case | size | time (s) | Mpx/s | peak RSS (MiB) | cpu/wall | time/px vs one-shot "
          "| CPU-s/px vs one-shot |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        label = {"raw": "raw generator, 1 tile (lazyastro evaluator; the limit)",
                 "raw-tf": "raw generator, 1 tile (TensorFlow call, reference)",
                 "one-shot": "one-shot (whole noise field, 1 call) -> Zarr",
                 "tiled-1": "tiled -> Zarr, 1 core (sync; like one-shot)",
                 "tiled": f"tiled -> Zarr ({args.scheduler})"}[r["kind"]]
        ratio, cratio = one["seconds"] / one["pixels"], one["cpu"] / one["pixels"]
        print(f"| {label} | {r['size']} | {r['seconds']:.1f} | {rate(r):.3f} | {r['peak'] / 2**20:.0f} | "
              f"{r['cpu'] / r['seconds']:.2f} | {r['seconds'] / r['pixels'] / ratio:.2f}x | "
              f"{r['cpu'] / r['pixels'] / cratio:.2f}x |")
    print(f"\ntiling overhead at {one['size']}, both on one core: {tiled1['seconds'] / one['seconds']:.2f}x one-shot "
          f"time, {tiled1['cpu'] / one['cpu']:.2f}x its CPU time (halo work alone: "
          f"{halo_cost(args.tile, 16, (3, 2)):.3f}x for tile {args.tile}; target <= 1.15x)")
    best = tiled[-1]
    hours = 60000**2 / 1e6 / rate(best) / 3600
    cores = os.cpu_count() or 1
    limit = 60000**2 / 1e6 / rate(rows[0]) / 3600
    print(f"projected 60k x 60k: {hours:.1f} h at {rate(best):.3f} Mpx/s ({best['size']} px mosaic rate); "
          f"raw-generator limit {limit:.1f} h on one core, {limit / cores:.1f} h on this machine's {cores} cores")


if __name__ == "__main__":
    main()
