#!/usr/bin/env bash
# GPU check for lazyastro: run on a machine with an NVIDIA GPU, from the repository root.
#
#   bash benchmarks/gpu_check.sh                      # 64 x 2048 x 2048 uint16 series (512 MiB)
#   GPU_CHECK_SHAPE=200,2048,2048 bash benchmarks/gpu_check.sh
#   GPU_CHECK_SKIP_INSTALL=1 bash benchmarks/gpu_check.sh   # never pip install
#
# 1. installs cupy-cuda12x if CuPy is missing (and lazyastro itself if it is not importable);
# 2. runs the CuPy test modules (frames + synthetic kernels and graphs, skipper kernels);
# 3. times frames max / mean / median on a numpy series, on the same series moved to the GPU
#    block by block (host->device copies included) and on a GPU-resident (persisted) series,
#    checks the results agree, and prints a markdown table.
# Exit status: that of the tests (the benchmark runs either way).
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}

if ! "$PY" -c "import lazyastro" 2>/dev/null; then
    [ -n "${GPU_CHECK_SKIP_INSTALL:-}" ] || "$PY" -m pip install -q -e ".[test]"
fi
if ! "$PY" -c "import cupy" 2>/dev/null; then
    if [ -n "${GPU_CHECK_SKIP_INSTALL:-}" ]; then
        echo "gpu_check: CuPy is not installed (GPU_CHECK_SKIP_INSTALL set)"; exit 2
    fi
    "$PY" -m pip install -q cupy-cuda12x || { echo "gpu_check: pip install cupy-cuda12x failed"; exit 2; }
fi
"$PY" - <<'EOF' || exit 2
import cupy
from lazyastro.core.backend import has_cupy
if not has_cupy():
    raise SystemExit("gpu_check: CuPy imports but sees no GPU")
dev = cupy.cuda.runtime.getDeviceProperties(0)
print(f"gpu_check: CuPy {cupy.__version__} on {dev['name'].decode()}, "
      f"{dev['totalGlobalMem'] / 2**30:.0f} GiB, CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}")
EOF

TESTS=(tests/frames/test_cupy.py)
[ -f tests/skipper/test_cupy.py ] && TESTS+=(tests/skipper/test_cupy.py) || echo "gpu_check: tests/skipper/test_cupy.py not found, skipped"
echo "== $PY -m pytest -q ${TESTS[*]}"
"$PY" -m pytest -q -p no:cacheprovider -rs "${TESTS[@]}"
rc=$?

echo "== frames statistics: numpy vs CuPy (${GPU_CHECK_SHAPE:-64,2048,2048} uint16, threads scheduler, best of 3)"
GPU_CHECK_SHAPE=${GPU_CHECK_SHAPE:-64,2048,2048} "$PY" - <<'EOF'
import os
import time

import cupy as cp
import dask.array as da
import numpy as np
import xarray as xr

import lazyastro
import lazyastro.frames as lf
from lazyastro.core.backend import is_cupy, to_device, to_numpy

shape = tuple(int(v) for v in os.environ["GPU_CHECK_SHAPE"].split(","))
host = np.random.default_rng(0).integers(0, 4000, shape, dtype=np.uint16)
chunks = (8, min(512, shape[1]), shape[2])
cpu = lf.as_series(xr.DataArray(da.from_array(host, chunks=chunks), dims=("frame", "y", "x")))
moved = to_device(cpu, "gpu")                      # blocks copied host->device inside the graph
resident = moved.copy(data=moved.data.persist(scheduler="threads"))  # blocks already on the GPU
cp.cuda.Device().synchronize()
gib = host.nbytes / 2**30


def best(fn, repeat=3):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        cp.cuda.Device().synchronize()
        times.append(time.perf_counter() - t)
    return min(times), out


def run(series, stat):
    lazy = getattr(lf, stat)(series)
    return lazyastro.compute(lazy.data, scheduler="threads", progress=False)[0]


rows = []
for stat in ("max", "mean", "median"):
    t_np, r_np = best(lambda s=stat: run(cpu, s))
    t_mv, r_mv = best(lambda s=stat: run(moved, s))
    t_gp, r_gp = best(lambda s=stat: run(resident, s))
    on_gpu = is_cupy(r_mv) and is_cupy(r_gp)
    same = True
    for r in (r_mv, r_gp):
        r = to_numpy(r)
        same = same and (np.array_equal(r, r_np) if stat != "mean" else np.allclose(r, r_np, rtol=1e-6))
    rows.append((stat, t_np, t_mv, t_gp, on_gpu, same))

print("\n| stat | numpy (s) | CuPy, moved per block (s) | CuPy, resident (s) | resident vs numpy "
      "| GiB/s resident | result is CuPy | same values |")
print("|---|---|---|---|---|---|---|---|")
yn = {True: "yes", False: "NO"}
for stat, t_np, t_mv, t_gp, on_gpu, same in rows:
    print(f"| {stat} | {t_np:.3f} | {t_mv:.3f} | {t_gp:.3f} | {t_np / t_gp:.1f}x | {gib / t_gp:.1f} "
          f"| {yn[on_gpu]} | {yn[same]} |")
print(f"\nseries {shape} uint16 = {gib:.2f} GiB, chunks {chunks}; numpy runs on {os.cpu_count()} CPU cores")
EOF
exit $rc
