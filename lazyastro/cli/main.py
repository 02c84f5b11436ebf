"""The ``lazyastro`` command line.

Global options (``--scheduler``, ``--no-progress``, ``--debug``,
``--memory-budget``) may appear anywhere on the line. Errors print one line
naming the file and the problem and exit non-zero; ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from .. import __version__
from ..core.config import set_options
from ..core.errors import LazyAstroError

# Subcommands: name -> (module with ``register(subparsers)``, one-line help). A module is
# imported only when one of its commands runs (or its --help is asked for), so
# ``lazyastro --help`` imports no format, dask or task code.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "info": ("lazyastro.cli.commands", "describe a dataset (lazy: reads metadata only)"),
    "convert": ("lazyastro.cli.commands", "convert any readable dataset to another format, streaming"),
    "formats": ("lazyastro.cli.commands", "list the registered formats and their options"),
    "demo": ("lazyastro.cli.demo", "run the end-to-end out-of-core demo on synthetic data"),
    "frames": ("lazyastro.frames.cli", "image series (frame stacks): statistics and conversion"),
    "skipper": ("lazyastro.skipper.cli", "Skipper-CCD quick-look statistics (legacy image_preproc)"),
    "gan": ("lazyastro.gan.cli", "GAN image-set statistics: power spectra, histograms, Minkowski functionals"),
    "sgan": ("lazyastro.sgan.cli", "generative deep fields: Spatial GAN training, generation, tessellation"),
    "dre": ("lazyastro.dre.cli", "DRE galaxy fitting: extraction, PSF, cutouts, model cubes, chi^2 fit"),
}
SUBCOMMAND_MODULES = tuple(dict.fromkeys(mod for mod, _ in SUBCOMMANDS.values()))
ALL = "*"
_GLOBAL_WITH_VALUE = ("--scheduler", "--memory-budget")
_GLOBAL_FLAGS = ("--no-progress", "--debug")


def _hoist_globals(argv: Sequence[str]) -> list[str]:
    """Move global options found after the subcommand to the front of the line."""
    front: list[str] = []
    rest: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg == "--":
            rest.append(arg)
            rest.extend(it)
            break
        name = arg.split("=", 1)[0]
        if name in _GLOBAL_WITH_VALUE:
            front.append(arg)
            if "=" not in arg:
                nxt = next(it, None)
                if nxt is not None:
                    front.append(nxt)
        elif arg in _GLOBAL_FLAGS:
            front.append(arg)
        else:
            rest.append(arg)
    return front + rest


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand named on a hoisted command line (global options come first)."""
    it = iter(argv)
    for arg in it:
        if arg in _GLOBAL_WITH_VALUE:
            next(it, None)
        elif arg == "--":
            return next(it, None)
        elif not arg.startswith("-"):
            return arg
    return None


class OneLineParser(argparse.ArgumentParser):
    """argparse with one-line usage errors (``lazyastro: error: argument --x: ...``), exit 2.

    Subcommand parsers are made of the same class, so every option error is one line.
    """

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser(command: str | None = ALL) -> argparse.ArgumentParser:
    """The ``lazyastro`` parser.

    Parameters
    ----------
    command : str or None
        Build this subcommand fully and the others as one-line stubs (``None``: stubs only,
        enough for ``lazyastro --help``); the default builds every subcommand.

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = OneLineParser(
        prog="lazyastro",
        description="Lazy, chunked, out-of-core astronomical image analysis.",
    )
    parser.add_argument("--version", action="version", version=f"lazyastro {__version__}")
    parser.add_argument(
        "--scheduler", default=None,
        help="sync, threads (default), processes, distributed, or a tcp:// scheduler address "
        "(default: $LAZYASTRO_SCHEDULER or threads)",
    )
    parser.add_argument("--memory-budget", default=None, metavar="SIZE",
                        help="memory budget that sets chunk sizes, e.g. 512MiB (default: $LAZYASTRO_MEMORY_BUDGET or 512MiB)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod_name in SUBCOMMAND_MODULES:
        names = [n for n, (m, _) in SUBCOMMANDS.items() if m == mod_name]
        if command == ALL or command in names:
            try:
                mod = importlib.import_module(mod_name)
            except ModuleNotFoundError as exc:
                if exc.name and mod_name.startswith(exc.name):
                    continue  # optional task package not present
                raise
            mod.register(sub)
        else:
            for name in names:
                sub.add_parser(name, help=SUBCOMMANDS[name][1], add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lazyastro`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        argv = _hoist_globals(argv)
        command = _command_of(argv)
        parser = build_parser(command if command in SUBCOMMANDS else None)
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        with set_options(scheduler=args.scheduler, memory_budget=args.memory_budget,
                         progress=False if not args.progress else None):
            from ..core.execution import scheduler_session

            # One cluster (or connection) for the whole command, however many computes it runs.
            with scheduler_session():
                code = args.func(args)
        return int(code or 0)
    except LazyAstroError as exc:
        if debug:
            raise
        print(f"lazyastro: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lazyastro: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # anything unexpected: still one line unless --debug
        if debug:
            raise
        print(f"lazyastro: internal error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)",
              file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
