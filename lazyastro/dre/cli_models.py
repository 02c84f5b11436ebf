"""``lazyastro dre models``: render a Sérsic model cube (thin: parse, call, report).

::

    lazyastro dre models models.zarr                       # the default (legacy) grid
    lazyastro dre models cube.fits --layout legacy         # the legacy FITS mosaic
    lazyastro dre models m.zarr --n 1,4 --q 0.2:1.0:5 --theta 0:180:13 --log-r -0.602:1.699:21

A grid option is ``START:STOP:COUNT`` (``COUNT`` evenly spaced values, both ends included) or a
comma list of values.
"""

from __future__ import annotations

import argparse

__all__ = ["register", "parse_grid"]


def parse_grid(text: str, name: str = "grid") -> list[float]:
    """``"0.1:1.0:10"`` -> 10 evenly spaced values; ``"1,4"`` -> [1.0, 4.0].

    Raises
    ------
    ParameterError
        Not numbers, or a count < 1.

    Examples
    --------
    >>> parse_grid("0:180:3"), parse_grid("4")
    ([0.0, 90.0, 180.0], [4.0])
    """
    import numpy as np

    from ..core.errors import ParameterError

    text = text.strip()
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError
            start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
            if count < 1:
                raise ParameterError(f"--{name}: COUNT must be >= 1, got {count}")
            return [float(v) for v in np.linspace(start, stop, count)]
        return [float(v) for v in text.split(",") if v.strip()] or [float("nan")]
    except ValueError:
        raise ParameterError(f"--{name}: expected START:STOP:COUNT or a comma list of numbers, got {text!r}") from None


def _models(args) -> int:
    from .models import default_grid, make_models, write_models

    dflt = default_grid()
    grid = {}
    for dim, opt in (("n", "n"), ("q", "q"), ("theta", "theta"), ("log_r", "log-r")):
        value = getattr(args, dim)
        grid[dim] = dflt[dim] if value is None else parse_grid(value, opt)
    models = make_models(**grid, boxsize=args.boxsize, oversample=args.oversample)
    out = write_models(models, args.out, layout=args.layout, overwrite=args.overwrite)
    shape = " x ".join(str(s) for s in models.shape[:4])
    print(f"{out}: {models.shape[0] * models.shape[1] * models.shape[2] * models.shape[3]} models "
          f"({shape}) of {args.boxsize}x{args.boxsize} ({args.layout})")
    return 0


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``models`` to the ``dre`` subcommands."""
    from ..cli.options import int_option

    p = subparsers.add_parser("models", help="render a cube of pixel-integrated Sérsic models",
                              description="Render a grid of Sérsic models (centre at pixel (B//2, B//2), "
                              "each stamp normalised to sum 1) to a Zarr cube or the legacy FITS mosaic. "
                              "Grid options: START:STOP:COUNT or a comma list; defaults = the legacy cube.")
    p.add_argument("out", help="output .zarr directory (or .fits with --layout legacy)")
    p.add_argument("--n", default=None, help="Sérsic indices (default 4)")
    p.add_argument("--q", default=None, help="axis ratios (default 0.1:1.0:10)")
    p.add_argument("--theta", default=None, help="position angles, degrees CCW from +x (default 0:180:13)")
    p.add_argument("--log-r", dest="log_r", default=None,
                   help="log10 effective radii in pixels (default log10(0.25):log10(50):21; write "
                   "--log-r=-0.602:1.699:21 when START is negative)")
    p.add_argument("--boxsize", type=int_option(min=8), default=128, help="stamp size (default 128)")
    p.add_argument("--oversample", type=float, default=1.0,
                   help="multiply the adaptive integration cells (default 1: good to 1e-3 of the flux)")
    p.add_argument("--layout", choices=("zarr", "legacy"), default="zarr",
                   help="zarr (default) or the legacy FITS mosaic")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=_models)
    return p
