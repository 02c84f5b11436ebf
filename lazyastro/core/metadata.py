"""Metadata conversion between formats (FITS headers, JSON attributes)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["json_attrs", "header_from_attrs", "STRUCTURAL_KEYS"]

# FITS cards that describe the data layout; writers regenerate them.
STRUCTURAL_KEYS = {
    "SIMPLE", "BITPIX", "NAXIS", "EXTEND", "BZERO", "BSCALE", "PCOUNT", "GCOUNT",
    "XTENSION", "END", "CHECKSUM", "DATASUM", "BLANK", "ZIMAGE", "ZBITPIX", "ZCMPTYPE",
}


def _is_structural(key: str) -> bool:
    return key in STRUCTURAL_KEYS or (key.startswith("NAXIS") and key[5:].isdigit())


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        if isinstance(value, float) and not np.isfinite(value):
            return str(value)
        return value
    return str(value)


def json_attrs(attrs: dict) -> dict:
    """JSON-serialisable copy of xarray ``attrs``; a FITS header becomes a card list."""
    from astropy.io.fits import Header

    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if key == "wcs":
            continue  # the header carries the WCS keywords
        if isinstance(value, Header):
            out["fits_header"] = [
                [card.keyword, _jsonable(card.value), card.comment]
                for card in value.cards
                if card.keyword and not _is_structural(card.keyword)
            ]
        else:
            out[str(key)] = _jsonable(value)
    return out


# Attributes that readers add about the source; they are not carried into FITS cards.
READER_ATTRS = {"source", "format", "hdu", "dataset", "wcs", "header", "fits_header", "_ARRAY_DIMENSIONS"}


def header_from_attrs(attrs: Any):
    """An astropy Header from a Header, a ``{key: value}`` dict, or xarray ``attrs``.

    ``attrs['header']`` (a Header) and ``attrs['fits_header']`` (a card list)
    are used first; other scalar attributes with FITS-style keys (at most 8
    characters) become cards too, so metadata such as ``OBJECT`` or ``seed``
    travels to the output. Structural cards are always dropped.
    """
    from astropy.io.fits import Card, Header

    header = Header()
    if attrs is None:
        return header
    if isinstance(attrs, Header):
        attrs = {"header": attrs}
    cards: list[tuple] = []
    src = attrs.get("header")
    if isinstance(src, Header):
        cards += [(c.keyword, c.value, c.comment) for c in src.cards]
    elif isinstance(src, dict):
        cards += [(k, v, "") for k, v in src.items()]
    cards += [tuple(c) for c in attrs.get("fits_header", [])]
    for key, value in attrs.items():
        if key in READER_ATTRS or not isinstance(value, str | int | float | bool | np.generic):
            continue
        if len(key) <= 8 and key.replace("-", "").replace("_", "").isalnum():
            cards.append((key.upper(), _jsonable(value), ""))
    for key, value, comment in cards:
        if not key or _is_structural(key.upper()) or key.upper() in ("COMMENT", "HISTORY") and not value:
            continue
        try:
            header.append(Card(key, value, comment), end=True)
        except (ValueError, TypeError):
            continue
    return header
