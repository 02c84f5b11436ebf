"""Generic subcommands: ``info``, ``convert``, ``formats``."""

from __future__ import annotations

import argparse
import math

from ..core.config import format_bytes
from ..core.errors import ParameterError
from ..io import registry
from .options import int_option


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """``"1,512,512"`` -> ``(1, 512, 512)`` (``-1`` = whole axis).

    >>> parse_shape("1,512,-1")
    (1, 512, -1)
    """
    if text is None:
        return None
    try:
        shape = tuple(int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise ParameterError(f"invalid shape {text!r}; use comma-separated integers like 1,512,512") from None
    bad = [n for n in shape if n < 1 and n != -1]
    if bad:
        raise ParameterError(f"invalid shape {text!r}: sizes must be >= 1 (or -1 for a whole axis)")
    return shape


def _shape_option(text: str) -> tuple[int, ...]:
    try:
        return parse_shape(text)
    except ParameterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_shape_option.__name__ = "shape"


def _int_or_str(text: str) -> int | str:
    return int(text) if text.lstrip("-").isdigit() else text


# ----------------------------------------------------------------------------- options from the registry


def _flag(param: registry.Param) -> str:
    return param.flag or "--" + param.name.replace("_", "-")


def _declared(which: str, kinds: tuple[str, ...] | None) -> dict[str, tuple[registry.Param, list[str]]]:
    """Command-line flag -> (declaration, format names), merged over the registered formats.

    Write options whose flag a read option already uses get an ``--out-`` prefix
    (``--out-chunks``), the same whatever the command.
    """
    fmts = [f for n, f in registry.formats().items() if n == f.name]
    open_flags = {_flag(p) for f in fmts for p in f.open_params if p.cli}
    merged: dict[str, tuple[registry.Param, list[str]]] = {}
    for fmt in fmts:
        if kinds is not None and fmt.kind not in kinds:
            continue
        if not (fmt.readable if which == "open" else fmt.writable):
            continue
        for p in fmt.params(which):
            if not p.cli:
                continue
            flag = _flag(p)
            if which == "write" and p.flag is None and flag in open_flags:
                flag = "--out-" + p.name.replace("_", "-")
            if flag in merged:
                seen, names = merged[flag]
                if seen.name != p.name or seen.type != p.type:
                    raise TypeError(
                        f"format {fmt.name!r} declares {flag} as {p.name}: {p.type}, "
                        f"{names[0]!r} as {seen.name}: {seen.type}"
                    )
                if seen.choices is not None or p.choices is not None:
                    choices = tuple(dict.fromkeys((*(seen.choices or ()), *(p.choices or ()))))
                    seen = registry.Param(seen.name, seen.type, seen.help, None, choices, flag=seen.flag)
                merged[flag] = (seen, [*names, fmt.name])
            else:
                merged[flag] = (p, [fmt.name])
    return merged


def add_format_options(
    parser: argparse.ArgumentParser,
    which: str,
    *,
    kinds: tuple[str, ...] | None = None,
    exclude: tuple[str, ...] = (),
) -> None:
    """Add the options that the formats' ``open`` (``which="open"``) or ``write`` declare.

    Each option is added once, with the formats that take it in its help; its value is
    passed only to a format that declares it (another format refuses it in one line).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    which : {"open", "write"}
        Reader or writer options.
    kinds : tuple of str, optional
        Only formats of these kinds.
    exclude : tuple of str
        Flags the command defines itself.
    """
    from .options import float_option, int_option

    table = {}
    group = parser.add_argument_group("input format options" if which == "open" else "output format options")
    for flag, (p, names) in _declared(which, kinds).items():
        if flag in exclude:
            continue
        dest = f"{which}_opt_{p.name}"
        kw: dict = {"dest": dest, "default": None,
                    "help": f"{p.help} [{', '.join(names)}]".replace("%", "%%")}
        if p.type is bool:
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = {
                int: int_option(min=p.min, max=p.max), float: float_option(min=p.min, max=p.max),
                "shape": _shape_option, "int-or-str": _int_or_str, str: str,
            }[p.type]
            if p.choices is not None:
                kw["choices"] = p.choices
            kw["metavar"] = {"shape": "SHAPE", int: "N", float: "X"}.get(p.type, "VALUE" if p.choices is None else None)
            if kw["metavar"] is None:
                del kw["metavar"]
        group.add_argument(flag, **kw)
        table[dest] = (p.name, flag)
    parser.set_defaults(**{f"_{which}_options": table})


def format_options(args: argparse.Namespace, fmt: registry.Format | None, which: str) -> dict:
    """The declared options given on the command line, as keywords for ``fmt``.

    With ``fmt=None``, every given option (name -> value). An option ``fmt`` does not take
    is a :class:`ParameterError` naming the flag, the format and what it takes.
    """
    table = getattr(args, f"_{which}_options", {}) or {}
    given = {dest: spec for dest, spec in table.items() if getattr(args, dest, None) is not None}
    if fmt is None:
        return {name: getattr(args, dest) for dest, (name, _flag_) in given.items()}
    accepted = {p.name for p in fmt.params(which)}
    bad = [flag for _dest, (name, flag) in given.items() if fmt.strict_params and name not in accepted]
    if bad:
        side = "input" if which == "open" else "output"
        takes = [f for _d, (n, f) in table.items() if n in accepted]
        hint = f" ({fmt.name} takes {', '.join(takes)})" if takes else ""
        verb = "does" if len(bad) == 1 else "do"
        raise ParameterError(f"{', '.join(bad)} {verb} not apply to {fmt.name} {side}{hint}")
    return {name: getattr(args, dest) for dest, (name, _flag_) in given.items()}


def open_input(args: argparse.Namespace, path: str, *, kinds: tuple[str, ...] | None = None):
    """``(format, data)`` of the input named on the command line (``--format`` and reader options)."""
    given = format_options(args, None, "open")
    fmt = registry.resolve(path, args.input_format, options=given, kinds=kinds, option="--format")
    kw = format_options(args, fmt, "open")
    return fmt.name, registry.open(path, format=fmt.name, **kw)


def cmd_info(args: argparse.Namespace) -> int:
    given = format_options(args, None, "open")
    fmt = registry.resolve(args.path, args.input_format, options=given, option="--format").name
    fmt_obj = registry.get_format(fmt)
    arr = registry.describe(args.path, format=fmt, **format_options(args, fmt_obj, "open"))
    nbytes = math.prod(arr.shape) * arr.dtype.itemsize
    chunks = arr.chunks
    print(f"path    : {args.path}")
    print(f"format  : {fmt}")
    print(f"dims    : {', '.join(f'{d}={n}' for d, n in zip(arr.dims, arr.shape))}")
    print(f"shape   : {tuple(arr.shape)}")
    print(f"dtype   : {arr.dtype}")
    print(f"size    : {format_bytes(nbytes)}")
    if chunks is not None:
        print(f"chunks  : {tuple(chunks)} ({arr.nblocks} blocks)")
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
    if args.output_format:
        out_fmt = registry.get_format(args.output_format, option="--to")
    else:
        out_fmt = registry.get_format(registry.detect_format(args.output, for_writing=True))
    if not out_fmt.writable:
        raise ParameterError(f"--to {out_fmt.name}: this format cannot be written")
    kw = format_options(args, out_fmt, "write")
    out = registry.write(arr, args.output, format=out_fmt.name, overwrite=args.overwrite, **kw)
    print(f"wrote {out} ({out_fmt.name}, {tuple(arr.shape)} {arr.dtype})")
    return 0


def cmd_formats(args: argparse.Namespace) -> int:
    for name, fmt in sorted(registry.formats().items()):
        if name != fmt.name:
            continue
        rw = ("r" if fmt.readable else "-") + ("w" if fmt.writable else "-")
        print(f"{fmt.name:18s} {rw}  {fmt.kind:7s} {' '.join(fmt.extensions):24s} {fmt.description}")
        if args.verbose:
            for which in ("open", "write"):
                flags = {p.name: f for f, (p, names) in _declared(which, None).items() if fmt.name in names}
                opts = ", ".join(flags.get(p.name, p.name + "=") for p in fmt.params(which))
                if opts:
                    print(f"{'':22s}{'read' if which == 'open' else 'write'}: {opts}")
    return 0


def _format_list() -> str:
    return ", ".join(registry.format_names())


def _input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", dest="input_format", default=None, metavar="NAME",
                   help=f"input format (default: detect from the content): {_format_list()}")
    add_format_options(p, "open")


def register(sub) -> None:
    p = sub.add_parser("info", help="describe a dataset (lazy: reads metadata only)")
    p.add_argument("path")
    p.add_argument("--cards", type=int_option(min=0), default=12, help="header cards to show (default 12)")
    _input_options(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("convert", help="convert any readable dataset to another format, streaming")
    p.add_argument("input")
    p.add_argument("output", help="output path; format from the extension (.fits, .zarr, .h5, .tif, .npy, ...)")
    _input_options(p)
    p.add_argument("--to", dest="output_format", default=None, metavar="NAME",
                   help="output format (default: from the extension)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    add_format_options(p, "write")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("formats", help="list the registered formats and their options")
    p.add_argument("-v", "--verbose", action="store_true", help="also list each format's options")
    p.set_defaults(func=cmd_formats)
