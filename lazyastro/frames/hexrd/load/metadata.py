"""YAML metadata with hexrd's triggers (hexrd ``imageseries.load.metadata``).

A string value whose first word is ``!`` triggers processing:
``"! load-numpy-array file.npy"`` is replaced by the array in that file (loaded
with ``allow_pickle=False``; relative to the directory of ``path``); other
trigger words drop the key. The obsolete pair ``key: '++np.array'`` +
``key-array: [...]`` becomes an array.

>>> yamlmeta({"a": 1, "x": "++np.array", "x-array": [1, 2]})["x"].tolist()
[1, 2]
"""

from __future__ import annotations

import os

import numpy as np

from ....core.errors import FormatError

__all__ = ["yamlmeta"]


def yamlmeta(meta: dict, path: str | os.PathLike | None = None) -> dict:
    """Resolve hexrd metadata triggers in a YAML mapping.

    Parameters
    ----------
    meta : dict
        The ``meta`` section.
    path : str or path, optional
        A file whose directory relative array files are found in (default: ``.``).

    Returns
    -------
    dict
        The metadata with triggers resolved.

    Raises
    ------
    FormatError
        If an array file holds pickled objects or cannot be read.

    Examples
    --------
    >>> yamlmeta({"a": "! unknown-trigger x", "b": "plain"})
    {'b': 'plain'}
    """
    base = os.path.dirname(os.fspath(path)) if path is not None else "."
    meta = dict(meta or {})
    out, consumed = {}, set()
    for key, value in list(meta.items()):
        if key in consumed:
            continue
        words = value.split() if isinstance(value, str) else []
        if value == "++np.array":
            out[key] = np.array(meta.pop(key + "-array"))
            out.pop(key + "-array", None)
            consumed.add(key + "-array")
        elif len(words) > 1 and words[0] == "!":
            if words[1] == "load-numpy-array" and len(words) > 2:
                fname = os.path.join(base, words[2])
                try:
                    out[key] = np.load(fname, allow_pickle=False)
                except ValueError as exc:
                    raise FormatError(f"meta {key!r}: cannot load the array without pickle ({exc})", fname) from exc
        else:
            out[key] = value
    return out
