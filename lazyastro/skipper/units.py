"""Units of the skipper statistics (one table for tables, Datasets and plots).

Unit strings follow astropy's generic format; ``nat`` (natural unit of information) and
``skip`` are lazyastro units, enabled while lazyastro reads and writes its tables
(:func:`enabled_units`), so ECSV files carry them as column units.

>>> UNITS["skNoise"], UNITS["darkCurrent"], UNITS["aduConversion"]
('adu', 'electron / pix', 'adu / electron')
"""

from __future__ import annotations

import contextlib

__all__ = ["UNITS", "DESCRIPTIONS", "unit_of", "enabled_units", "label"]

#: unit of each statistic (its ``*_err`` column has the same unit); "" = dimensionless
UNITS: dict[str, str] = {
    "nskips": "",
    "aveImgS": "nat",
    "dSdskip": "mnat / skip",
    "imgNoise": "adu",
    "skNoise": "adu",
    "pixVar": "adu2",
    "clustVar": "adu2",
    "tailRatio": "",
    "darkCurrent": "electron / pix",
    "aduConversion": "adu / electron",
    "seed": "",
    "size": "byte",
    "mtime": "s",
}

DESCRIPTIONS: dict[str, str] = {
    "nskips": "number of skips (NDCMS)",
    "aveImgS": "entropy of the average image (1-ADU bins)",
    "dSdskip": "slope of the skip-image entropy over the first 30 skips",
    "imgNoise": "mean Gaussian sigma of the first 50 single-skip images",
    "skNoise": "noise of the average image (sigma of the zero-electron peak)",
    "skNoise_method": "how skNoise was measured (poisson_gauss, peaks, failed)",
    "skNoise_reason": "why skNoise is NaN (empty when it was measured)",
    "pixVar": "median over pixels of the variance over skips 2...",
    "clustVar": "median variance of random pixel blocks within one skip",
    "tailRatio": "low-tail (4 sigma) count over its Gaussian expectation",
    "tailRatio_method": "how tailRatio was measured",
    "darkCurrent": "mean electrons per pixel (Poisson lambda)",
    "aduConversion": "gain: ADU per electron",
    "exact": "every value counted in its own 1-ADU code (no rounding or coarsening)",
    "version": "legacy variable definitions (2019 or 2021)",
    "legacy": "legacy numerical quirks reproduced",
    "seed": "seed of the sampled statistics",
    "size": "file size when it was read",
    "mtime": "file modification time (POSIX) when it was read",
    "error": "why the file has no statistics (empty when it has)",
}


def unit_of(column: str) -> str | None:
    """Unit string of a statistic or its ``*_err`` column (``None``: not a quantity).

    Examples
    --------
    >>> unit_of("skNoise_err"), unit_of("skNoise_method")
    ('adu', None)
    """
    base = column[:-4] if column.endswith("_err") else column
    return UNITS.get(base)


_CUSTOM: list = []


def _custom_units() -> list:
    import astropy.units as u

    if not _CUSTOM:
        nat = u.def_unit("nat", doc="natural unit of information (entropy in nats)")
        _CUSTOM.extend([nat, u.def_unit("mnat", 1e-3 * nat, doc="milli-nat"),
                        u.def_unit("skip", doc="one skipper-CCD sample of a pixel")])
    return _CUSTOM


@contextlib.contextmanager
def enabled_units():
    """Context in which astropy parses ``nat``, ``mnat`` and ``skip``.

    Examples
    --------
    >>> import astropy.units as u
    >>> with enabled_units():
    ...     str(u.Unit("mnat / skip"))
    'mnat / skip'
    """
    import astropy.units as u

    with u.add_enabled_units(_custom_units()):
        yield


def label(column: str) -> str:
    """Axis/legend text with the unit: ``"skNoise [ADU]"``.

    Examples
    --------
    >>> label("darkCurrent")
    'darkCurrent [e-/pixel]'
    """
    pretty = {"adu": "ADU", "adu2": "ADU^2", "electron / pix": "e-/pixel", "adu / electron": "ADU/e-",
              "nat": "nats", "mnat / skip": "milli-nats/skip", "": "", "byte": "bytes", "s": "s"}
    unit = unit_of(column)
    text = pretty.get(unit, unit) if unit is not None else ""
    return f"{column} [{text}]" if text else column
