"""Skipper-CCD FITS layout: lazy reading as ``(row, col, skip)`` and streaming writing.

A skipper image is one primary HDU with ``NAXIS2 = nrows`` and ``NAXIS1 = ncols * nskips``;
the skips of one pixel are consecutive along the row (raw column ``c * nskips + s``),
and ``NDCMS`` holds ``nskips`` (missing: 1, e.g. average images). In C order the
data section is therefore exactly a ``(nrows, ncols, nskips)`` array.

Every dask task opens the file itself (by path) and memory-maps only the rows of its
block, a few MiB at a time, so graphs pickle and run under any scheduler and the
resident memory stays bounded whatever the file size.
"""

from __future__ import annotations

import builtins
import os
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from ..core.chunking import chunk_bytes_for_budget
from ..core.errors import FormatError, ParameterError, block_text, reading
from ..core.paths import require_input
from ..io.fits import apply_scaling, fits_layout

__all__ = ["open", "average", "skipper_layout", "skipper_chunks", "sniff_skipper", "SKIP_KEY"]

SKIP_KEY = "NDCMS"
# Largest file span one task maps at once while copying out its block.
_MAP_SPAN = 8 * 2**20


def skipper_layout(path: str | os.PathLike) -> dict[str, Any]:
    """Header, ``(nrows, ncols, nskips)`` shape, dtypes, data offset and scaling of a skipper file.

    >>> lay = skipper_layout("Img_01.fits")  # doctest: +SKIP
    >>> lay["shape"]  # doctest: +SKIP
    (50, 60, 25)
    """
    path = require_input(path, kind="file")
    lay = fits_layout(path, hdu=0)
    if len(lay["shape"]) != 2:
        raise FormatError(
            f"NAXIS = {len(lay['shape'])}: a skipper image has 2 axes (NAXIS1 = ncols * NDCMS)", path
        )
    if lay["compressed"]:
        raise FormatError("compressed skipper images are not supported", path)
    header = lay["header"]
    nrows, width = lay["shape"]
    raw_n = header.get(SKIP_KEY, 1)
    try:
        nskips = int(raw_n)
    except (TypeError, ValueError):
        raise FormatError(f"header {SKIP_KEY} = {raw_n!r} is not an integer", path) from None
    if nskips < 1:
        raise FormatError(f"header {SKIP_KEY} = {nskips} must be >= 1", path)
    if width % nskips:
        raise FormatError(
            f"NAXIS1 = {width} is not divisible by {SKIP_KEY} = {nskips} "
            "(a skipper row holds ncols * nskips values)",
            path,
        )
    if nrows == 0 or width == 0:
        raise FormatError("the image has no pixels (NAXIS1 or NAXIS2 is 0)", path)
    return {**lay, "shape": (nrows, width // nskips, nskips), "nskips": nskips}


def skipper_chunks(
    shape: tuple[int, int, int], itemsize: int = 8, target_bytes: int | None = None
) -> tuple[int, int, int]:
    """Chunk shape ``(rows, ncols, skips)``: whole skip images, split along ``skip`` first.

    Only when a single skip image exceeds the target are rows split too.
    ``itemsize`` defaults to 8 because statistics work on int64 ADU codes.

    >>> skipper_chunks((50, 60, 4000), target_bytes=2**20)
    (50, 60, 43)
    """
    nrows, ncols, nskips = shape
    target = target_bytes or chunk_bytes_for_budget()
    image = nrows * ncols * itemsize
    skips = max(1, min(nskips, target // max(image, 1)))
    if skips > 1 or image <= target:
        return (nrows, ncols, int(skips))
    rows = max(1, min(nrows, target // max(ncols * itemsize, 1)))
    return (int(rows), ncols, 1)


def read_block(lay: dict, rows: slice, cols: slice, skips: slice) -> np.ndarray:
    """Read ``data[rows, cols, skips]`` from the file, mapping a few MiB of rows at a time."""
    nrows, ncols, nskips = lay["shape"]
    raw_dtype = np.dtype(lay["raw_dtype"])
    row_bytes = ncols * nskips * raw_dtype.itemsize
    per_map = max(1, _MAP_SPAN // row_bytes)
    r0, r1 = rows.start or 0, nrows if rows.stop is None else rows.stop
    out = np.empty(
        (r1 - r0, len(range(*cols.indices(ncols))), len(range(*skips.indices(nskips)))),
        dtype=lay["dtype"],
    )
    if os.path.getsize(lay["path"]) < lay["offset"] + nrows * row_bytes:
        raise FormatError("file shrank while reading (truncated skipper data)", lay["path"])
    for g0 in range(r0, r1, per_map):
        g1 = min(r1, g0 + per_map)
        mm = np.memmap(
            lay["path"], dtype=raw_dtype, mode="r", offset=lay["offset"] + g0 * row_bytes,
            shape=(g1 - g0, ncols, nskips),
        )
        out[g0 - r0 : g1 - r0] = apply_scaling(np.array(mm[:, cols, skips]), lay)
        del mm  # unmap: file pages stop counting towards this process's memory
    return out


def _read_task(lay: dict, block_info=None) -> np.ndarray:
    slices = tuple(slice(a, b) for a, b in block_info[None]["array-location"])
    with reading(lay.get("source", lay["path"]), block_text(slices)):
        return read_block(lay, *slices)


def open(  # noqa: A001
    path: str | os.PathLike, chunks: dict | tuple | None = None, name: str | None = None
) -> xr.DataArray:
    """Open a skipper FITS file lazily as a DataArray with dims ``(row, col, skip)``.

    ``chunks`` is ``None`` (whole skip images, split along ``skip`` to fit the memory
    budget), a ``(rows, cols, skips)`` tuple or a ``{dim: size}`` dict (-1 = whole).
    ``attrs`` hold the ``header``, ``source`` path, ``nskips`` and the layout.

    >>> from lazyastro import skipper
    >>> cube = skipper.open("Img_01.fits")  # doctest: +SKIP
    >>> cube.sizes  # doctest: +SKIP
    Frozen({'row': 50, 'col': 60, 'skip': 25})
    """
    lay = skipper_layout(path)
    shape = lay["shape"]
    dims = ("row", "col", "skip")
    auto = skipper_chunks(shape)
    if chunks is None:
        chunk_shape = auto
    elif isinstance(chunks, dict):
        unknown = set(chunks) - set(dims)
        if unknown:
            raise ParameterError(f"chunks name unknown dims {sorted(unknown)}; dims are {dims}", path)
        chunk_shape = tuple(chunks.get(d, a) for d, a in zip(dims, auto))
    else:
        chunk_shape = tuple(chunks)
        if len(chunk_shape) != 3:
            raise ParameterError(f"chunks {chunks!r} must have 3 entries (row, col, skip)", path)
    chunk_shape = tuple(s if c in (-1, None) else c for c, s in zip(chunk_shape, shape))
    if any(not isinstance(c, int | np.integer) or c <= 0 for c in chunk_shape):
        raise ParameterError(f"invalid chunks {chunks!r}", path)
    stat = Path(path).stat()
    token = tokenize(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size, chunk_shape)
    lay_task = {k: v for k, v in lay.items() if k != "header"}
    # a compressed (gzip, ...) file is read from its decompressed copy
    lay_task["path"] = lay["path"] if lay.get("container") else str(Path(path).resolve())
    data = da.map_blocks(
        _read_task, lay_task, chunks=da.core.normalize_chunks(chunk_shape, shape),
        dtype=lay["dtype"], meta=np.empty((0, 0, 0), dtype=lay["dtype"]),
        name=name or f"skipper-{token}",
    )
    attrs = {
        "header": lay["header"], "source": str(Path(path).resolve()), "format": "skipper",
        "nskips": shape[2], "bzero": lay["bzero"], "bscale": lay["bscale"],
        "size": stat.st_size, "mtime": stat.st_mtime,
    }
    out = xr.DataArray(data, dims=dims, attrs=attrs)
    out.name = Path(path).name
    return out


def average(cube: xr.DataArray, skip_offset: int = 0) -> xr.DataArray:
    """Lazy mean over skips ``skip_offset ... nskips-1`` (legacy: ``skip_offset=0``, all skips).

    >>> avg = average(cube)  # doctest: +SKIP
    >>> avg.dims  # doctest: +SKIP
    ('row', 'col')
    """
    nskips = cube.sizes["skip"]
    if not 0 <= skip_offset < nskips:
        raise ParameterError(
            f"skip_offset = {skip_offset} must be in [0, {nskips - 1}] (file has {nskips} skips)",
            cube.attrs.get("source"),
        )
    sel = cube.isel(skip=slice(skip_offset, None))
    out = sel.mean("skip", dtype="float64")
    out.attrs = {**cube.attrs, "skip_offset": skip_offset}
    return out


def sniff_skipper(path: Path) -> bool:
    """True for a FITS file whose primary header has ``NDCMS`` dividing ``NAXIS1``."""
    if not Path(path).is_file():
        return False
    with builtins.open(path, "rb") as f:
        head = f.read(2880 * 4)
    if not head.startswith(b"SIMPLE  ="):
        return False
    cards = {}
    for i in range(0, len(head) - 79, 80):
        card = head[i : i + 80].decode("ascii", "replace")
        key = card[:8].strip()
        if key == "END":
            break
        if card[8:10] == "= ":
            cards[key] = card[10:].split("/")[0].strip()
    try:
        n, width = int(cards[SKIP_KEY]), int(cards["NAXIS1"])
        return int(cards["NAXIS"]) == 2 and n >= 1 and width % n == 0
    except (KeyError, ValueError):
        return False

