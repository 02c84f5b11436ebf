"""Output tables: ECSV/CSV with separate error columns, and the legacy whitespace text format.

Every write rewrites the whole table to a temporary file and renames it into place
(:func:`lazyastro.core.atomic.atomic_output`), so an interrupted run leaves the old
table intact and existing rows are never lost.

>>> rows = [{"filename": "/d/Img_1.fits", "nskips": 1, "skNoise": 1.5, "skNoise_err": 0.1}]
>>> print(format_legacy(rows, ["filename", "nskips", "skNoise"])[2])
/d/Img_1.fits       1  1.5 +/- 0.1
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.atomic import atomic_output
from ..core.errors import FormatError, ParameterError

__all__ = [
    "COLUMNS", "COLUMN_KINDS", "LEGACY_COLUMNS", "FIT_COLUMNS", "format_legacy", "to_table", "to_dataset",
    "to_rows", "dataset_from_columns", "read_done", "write_rows", "format_for",
]

FIT_COLUMNS = ("dSdskip", "skNoise", "darkCurrent", "aduConversion")
LEGACY_COLUMNS = {
    "2019": ["filename", "nskips", "aveImgS", "dSdskip", "imgNoise", "skNoise", "pixVar", "clustVar", "tailRatio"],
    "2021": ["filename", "nskips", "aveImgS", "dSdskip", "imgNoise", "skNoise", "tailRatio", "darkCurrent", "aduConversion"],
}
COLUMNS = [
    "filename", "nskips", "aveImgS", "dSdskip", "dSdskip_err", "imgNoise", "skNoise", "skNoise_err",
    "skNoise_method", "skNoise_reason", "pixVar", "clustVar", "tailRatio", "tailRatio_method", "darkCurrent",
    "darkCurrent_err", "aduConversion", "aduConversion_err", "exact", "version", "legacy", "seed",
    "size", "mtime",
]
#: kind of each Dataset variable: f float64, i int64, b bool, O string ("error": why a file failed)
COLUMN_KINDS = {
    **{c: "f" for c in COLUMNS[1:]},
    "nskips": "i", "seed": "i", "size": "i", "exact": "b", "legacy": "b",
    "skNoise_method": "O", "skNoise_reason": "O", "tailRatio_method": "O", "version": "O", "error": "O",
}
_STRINGS = ("filename", "skNoise_method", "skNoise_reason", "tailRatio_method", "version", "error")
FORMATS = ("ecsv", "csv", "legacy")


def format_for(path: str | os.PathLike, fmt: str | None) -> str:
    """Table format from ``fmt`` or the extension (``.csv``, ``.txt``/``.dat`` = legacy, else ECSV)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ParameterError(f"unknown table format {fmt!r}; use one of {', '.join(FORMATS)}")
        return fmt
    ext = Path(path).suffix.lower()
    return {".csv": "csv", ".txt": "legacy", ".dat": "legacy"}.get(ext, "ecsv")


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-1"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _fit(value: Any, err: Any) -> str:
    if value is None or err is None or math.isnan(value):
        return "-1 +/- -1"
    return f"{value:.2g} +/- {-1 if math.isnan(err) else err:.2g}"


def format_legacy(rows: Sequence[dict], columns: Sequence[str], header: bool = True) -> list[str]:
    """Lines of the legacy "simple" table: header, dashes, rows (``%.4g``, ``"%.2g +/- %.2g"``, -1)."""
    cells = []
    for r in rows:
        line = []
        for c in columns:
            if c in FIT_COLUMNS:
                line.append(_fit(r.get(c), r.get(f"{c}_err")))
            else:
                line.append(_num(r.get(c)))
        cells.append(line)
    widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(columns)]
    left = [c == "filename" for c in columns]

    def fmt(line):
        return "  ".join(v.ljust(w) if lft else v.rjust(w) for v, w, lft in zip(line, widths, left)).rstrip()

    out = [fmt(columns), "  ".join("-" * w for w in widths)] if header else []
    return out + [fmt(line) for line in cells]


def to_table(rows: Sequence[dict] | Any):
    """An astropy Table with one column per value (and ``*_err`` columns), NaN where not applicable.

    Parameters
    ----------
    rows : sequence of dict or xarray.Dataset
        Rows from :func:`compute_statistics`, or a (computed or lazy) Dataset from
        :func:`statistics`.

    Returns
    -------
    astropy.table.Table
        Columns carry units (``skNoise`` in ``adu``, ``darkCurrent`` in ``electron / pix``, ...)
        and descriptions; ECSV files keep both.

    Examples
    --------
    >>> t = to_table([{"filename": "/d/Img_1.fits", "nskips": 4, "skNoise": 1.5, "skNoise_err": 0.1}])
    >>> str(t["skNoise"].unit), float(t["skNoise"][0])
    ('adu', 1.5)
    """
    from astropy.table import Column, Table

    from .units import DESCRIPTIONS, enabled_units, unit_of

    if not isinstance(rows, Sequence):
        rows = to_rows(rows)
    table = Table()
    with enabled_units():
        for c in COLUMNS:
            values = [r.get(c) for r in rows]
            if c not in _STRINGS:
                values = [float("nan") if v is None else v for v in values]
            else:
                values = ["" if v is None else str(v) for v in values]
            unit = unit_of(c)
            table[c] = Column(values, name=c, unit=unit or None,
                              description=DESCRIPTIONS.get(c[:-4] if c.endswith("_err") else c))
    table.meta["generator"] = "lazyastro skipper"
    return table


def dataset_from_columns(names: Sequence[str], columns: dict, attrs: dict | None = None):
    """An ``xarray.Dataset`` along ``image`` from per-variable arrays (lazy or not), with units.

    Examples
    --------
    >>> ds = dataset_from_columns(["/d/a.fits"], {"skNoise": np.array([1.5])})
    >>> ds.skNoise.attrs["units"]
    'adu'
    """
    import xarray as xr

    from .units import DESCRIPTIONS, unit_of

    data = {}
    for key, values in columns.items():
        var_attrs = {}
        unit = unit_of(key)
        if unit is not None:
            var_attrs["units"] = unit
        desc = DESCRIPTIONS.get(key[:-4] if key.endswith("_err") else key)
        if desc:
            var_attrs["long_name"] = ("error of " + desc) if key.endswith("_err") else desc
        data[key] = xr.Variable(("image",), values, attrs=var_attrs)
    return xr.Dataset(data, coords={"image": list(names)},
                      attrs={"generator": "lazyastro skipper", **(attrs or {})})


def to_dataset(rows: Sequence[dict]):
    """The statistics rows as an in-memory ``xarray.Dataset`` with dim ``image`` and units.

    (:func:`lazyastro.skipper.statistics` builds the same Dataset lazily from files.)

    Examples
    --------
    >>> ds = to_dataset([{"filename": "/d/Img_1.fits", "nskips": 4, "skNoise": 1.5, "skNoise_err": 0.1}])
    >>> float(ds.skNoise.sel(image="/d/Img_1.fits")), ds.skNoise.attrs["units"]
    (1.5, 'adu')
    """
    names = [str(r.get("filename")) for r in rows]
    columns = {}
    for key, kind in COLUMN_KINDS.items():
        if key == "error" and not any("error" in r for r in rows):
            continue
        values = [r.get(key) for r in rows]
        if kind == "f":
            columns[key] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        elif kind == "i":
            columns[key] = np.array([-1 if v is None else v for v in values], dtype=np.int64)
        elif kind == "b":
            columns[key] = np.array([bool(v) for v in values], dtype=bool)
        else:
            columns[key] = np.array(["" if v is None else str(v) for v in values], dtype=object)
    return dataset_from_columns(names, columns)


def to_rows(ds) -> list[dict]:
    """Rows (dicts) of a statistics Dataset (computed first if lazy); NaN stays NaN.

    Examples
    --------
    >>> ds = to_dataset([{"filename": "/d/Img_1.fits", "nskips": 4, "skNoise": 1.5}])
    >>> to_rows(ds)[0]["skNoise"]
    1.5
    """
    ds = ds.compute()
    names = [str(n) for n in ds["image"].values]
    rows = []
    for i, name in enumerate(names):
        row: dict[str, Any] = {"filename": name}
        for key in ds.data_vars:
            v = ds[key].values[i]
            row[key] = v.item() if hasattr(v, "item") else v
        if row.get("error") == "":
            row.pop("error")
        rows.append(row)
    return rows


def read_done(path: str | os.PathLike, fmt: str) -> dict[str, tuple[Any, Any]]:
    """Files already in an output table: ``{filename: (size, mtime)}`` (legacy: first token of each line)."""
    path = Path(path)
    if not path.exists():
        return {}
    if fmt == "legacy":
        with open(path) as f:
            return {line.split()[0]: (None, None) for line in f if line.split()}
    table = _read_table(path, fmt)
    return {str(r["filename"]): (r["size"], r["mtime"]) for r in table}


def _read_table(path: Path, fmt: str):
    from astropy.table import Table

    from .units import enabled_units

    try:
        with enabled_units():
            table = Table.read(path, format="ascii.ecsv" if fmt == "ecsv" else "ascii.csv")
    except Exception as exc:  # never overwrite a table we cannot read: rows would be lost
        raise FormatError(f"existing output table cannot be read as {fmt} ({exc}); "
                          "move it away or pass -a to rewrite it", path) from None
    missing = {"filename", "size", "mtime"} - set(table.colnames)
    if missing:
        raise FormatError(f"existing output table lacks columns {sorted(missing)}", path)
    return table


def write_rows(
    path: str | os.PathLike, rows: Sequence[dict], fmt: str, rewrite: bool = False,
    variables: str = "2021",
) -> int:
    """Add ``rows`` to the table at ``path`` atomically (``rewrite``: replace it); rows of files
    already present are replaced. Returns the number of rows written."""
    from astropy.table import vstack

    path = Path(path)
    exists = path.exists() and not rewrite
    if fmt == "legacy":
        cols = LEGACY_COLUMNS[variables]
        old = path.read_text() if exists else ""
        if old and not old.endswith("\n"):
            old += "\n"
        new = format_legacy(rows, cols, header=not old)
        with atomic_output(path, overwrite=True) as tmp:
            tmp.write_text(old + "\n".join(new) + "\n")
        return len(rows)
    table = to_table(rows)
    if exists:
        old = _read_table(path, fmt)
        replaced = set(table["filename"])
        keep = [i for i, name in enumerate(old["filename"]) if str(name) not in replaced]
        table = vstack([old[keep], table], metadata_conflicts="silent") if len(keep) else table
    from .units import enabled_units

    with atomic_output(path, overwrite=True) as tmp, enabled_units():
        table.write(tmp, format="ascii.ecsv" if fmt == "ecsv" else "ascii.csv", overwrite=True)
    return len(rows)
