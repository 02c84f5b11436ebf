"""Generic subcommands: ``info``, ``convert``, ``formats``."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..core.config import format_bytes
from ..core.errors import ParameterError
from ..io import registry


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """``"1,512,512"`` -> ``(1, 512, 512)`` (``-1`` = whole axis)."""
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise ParameterError(f"invalid shape {text!r}; use comma-separated integers like 1,512,512") from None


def _reader_kwargs(args: argparse.Namespace, fmt: str) -> dict:
    kw: dict = {}
    if getattr(args, "dataset", None) and fmt == "hdf5":
        kw["dataset"] = args.dataset
    if getattr(args, "hdu", None) is not None and fmt == "fits":
        kw["hdu"] = int(args.hdu) if str(args.hdu).isdigit() else args.hdu
    if getattr(args, "name", None) and fmt == "zarr":
        kw["name"] = args.name
    if getattr(args, "chunks", None) and fmt in ("fits", "hdf5", "zarr"):
        kw["chunks"] = parse_shape(args.chunks)
    return kw


def open_input(args: argparse.Namespace, path: str):
    fmt = args.input_format or registry.detect_format(path)
    if getattr(args, "dataset", None) and not args.input_format and fmt != "hdf5":
        # --dataset names one HDF5 dataset: read it as plain HDF5 even if the file also
        # matches a legacy layout (e.g. a hexrd image series).
        if registry.get_format("hdf5").sniff(Path(path)):
            fmt = "hdf5"
        else:
            raise ParameterError(f"--dataset applies to HDF5 input, but this is {fmt}")
    return fmt, registry.open(path, format=fmt, **_reader_kwargs(args, fmt))


def cmd_info(args: argparse.Namespace) -> int:
    fmt, arr = open_input(args, args.path)
    nbytes = math.prod(arr.shape) * arr.dtype.itemsize
    chunks = getattr(arr.data, "chunksize", None)
    print(f"path    : {args.path}")
    print(f"format  : {fmt}")
    print(f"dims    : {', '.join(f'{d}={n}' for d, n in zip(arr.dims, arr.shape))}")
    print(f"shape   : {tuple(arr.shape)}")
    print(f"dtype   : {arr.dtype}")
    print(f"size    : {format_bytes(nbytes)}")
    if chunks is not None:
        print(f"chunks  : {tuple(chunks)} ({arr.data.npartitions} blocks)")
    header = arr.attrs.get("header")
    if header is not None:
        keys = [k for k in header if k not in ("COMMENT", "HISTORY", "")]
        print(f"header  : {len(header)} cards")
        for key in keys[: args.cards]:
            print(f"  {key:8s} = {header[key]!r}")
        if len(keys) > args.cards:
            print(f"  ... ({len(keys) - args.cards} more; --cards N to show more)")
    if "wcs" in arr.attrs:
        print(f"wcs     : {', '.join(arr.attrs['wcs'].wcs.ctype)}")
    others = {k: v for k, v in arr.attrs.items() if k not in ("header", "wcs", "fits_header")}
    for key, value in others.items():
        text = repr(value)
        print(f"attr    : {key} = {text if len(text) < 80 else text[:77] + '...'}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    _fmt, arr = open_input(args, args.input)
    out_fmt = args.output_format or registry.detect_format(args.output, for_writing=True)
    kw: dict = {"overwrite": args.overwrite}
    if out_fmt == "zarr":
        kw.update(codec=args.codec, chunks=parse_shape(args.out_chunks), shards=parse_shape(args.shards))
    elif out_fmt == "hdf5":
        kw.update(dataset=args.dataset_out or "data", compression=args.compression,
                  chunks=parse_shape(args.out_chunks))
    elif args.out_chunks or args.shards:
        raise ParameterError(f"--out-chunks/--shards do not apply to {out_fmt} output")
    out = registry.write(arr, args.output, format=out_fmt, **kw)
    print(f"wrote {out} ({out_fmt}, {tuple(arr.shape)} {arr.dtype})")
    return 0


def cmd_formats(args: argparse.Namespace) -> int:
    seen = set()
    for _name, fmt in sorted(registry.formats().items()):
        if id(fmt) in seen:
            continue
        seen.add(id(fmt))
        rw = ("r" if fmt.reader else "-") + ("w" if fmt.writer else "-")
        print(f"{fmt.name:18s} {rw}  {' '.join(fmt.extensions):24s} {fmt.description}")
    return 0


def _input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", dest="input_format", default=None, help="input format (default: detect)")
    p.add_argument("--dataset", default=None, help="HDF5 dataset path inside the input file")
    p.add_argument("--hdu", default=None, help="FITS HDU index or name (default: first with data)")
    p.add_argument("--name", default=None, help="array name inside a Zarr group")
    p.add_argument("--chunks", default=None, help="read chunks, e.g. 1,1024,-1")


def register(sub) -> None:
    p = sub.add_parser("info", help="describe a dataset (lazy: reads metadata only)")
    p.add_argument("path")
    p.add_argument("--cards", type=int, default=12, help="header cards to show (default 12)")
    _input_options(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("convert", help="convert any readable dataset to FITS, Zarr or HDF5, streaming")
    p.add_argument("input")
    p.add_argument("output", help="output path; format from the extension (.fits, .zarr, .h5)")
    _input_options(p)
    p.add_argument("--to", dest="output_format", default=None, choices=["fits", "zarr", "hdf5"])
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--out-chunks", default=None, help="output chunk shape (Zarr/HDF5)")
    p.add_argument("--shards", default=None, help="Zarr shard shape (whole multiple of the chunks)")
    p.add_argument("--codec", default="lz4", choices=["lz4", "zstd", "none"], help="Zarr codec (Blosc)")
    p.add_argument("--compression", default="blosc-lz4",
                   choices=["gzip", "lzf", "blosc-lz4", "blosc-zstd", "none"], help="HDF5 compression")
    p.add_argument("--dataset-out", default=None, help="HDF5 output dataset name (default: data)")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("formats", help="list the registered formats")
    p.set_defaults(func=cmd_formats)
