"""hexrd's exception types, also :class:`~lazyastro.core.errors.LazyAstroError` subclasses.

Each error here is caught by ``except <the hexrd/builtin type>`` (what hexrd
scripts do) and by ``except LazyAstroError`` (what lazyastro's CLI does), and its
``str`` is lazyastro's one line ``"PATH: message"``.

>>> issubclass(ImageSeriesFormatError, RuntimeError), issubclass(ImageSeriesFormatError, LazyAstroError)
(True, True)
"""

from __future__ import annotations

from ...core.errors import FormatError, LazyAstroError, ParameterError

__all__ = [
    "OmegaSeriesError",
    "ImageSeriesFormatError",
    "EmptyImageSeriesError",
    "UnknownFormatError",
    "UnknownStyleError",
    "FrameCacheVersionError",
    "LazyAstroError",
]


class OmegaSeriesError(ParameterError):
    """Omega metadata missing, of the wrong length, or not increasing (hexrd ``OmegaSeriesError``).

    ``value`` holds the message, as in hexrd.
    """

    def __init__(self, value, path=None):
        super().__init__(str(value), path)
        self.value = value


class ImageSeriesFormatError(FormatError, RuntimeError):
    """A file or array does not hold an image series hexrd can use (hexrd raises ``RuntimeError``)."""


class EmptyImageSeriesError(ImageSeriesFormatError):
    """``open`` found zero frames (hexrd: ``RuntimeError("zero length imageseries")``)."""


class UnknownFormatError(ParameterError, KeyError):
    """No adapter (or writer) is registered under that format name (hexrd raises ``KeyError``)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return LazyAstroError.__str__(self)


class UnknownStyleError(ParameterError, TypeError):
    """Unknown frame-cache ``style`` (hexrd raises ``TypeError``)."""


class FrameCacheVersionError(FormatError, NotImplementedError):
    """An fch5 frame cache without, or with an unsupported, ``HEXRD_FRAMECACHE_VERSION``."""
