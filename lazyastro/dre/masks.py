"""Kernels of the DRE cutouts: the object mask cleaning and the stamp geometry (pure, one stamp).

:func:`clean_mask` is step 5 of the legacy ``make_cuts``: from the object's own segmentation pixels
``seg == NUMBER`` in a stamp,

1. force a 4 x 4 block at the stamp centre True (rows/columns ``c-2 .. c+1``, ``c = size // 2``);
2. label the connected components with 4-connectivity and keep the one containing the centre
   pixel ``(c, c)``;
3. fill holes;
4. dilate 4 times with the cross (4-connectivity) element: a 4-pixel diamond growth.

Neighbours' pixels are excluded before the dilation, but the dilation ring may cover neighbour or
background pixels (as in the legacy tool).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["clean_mask", "cut_origin", "CROSS"]

CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=bool)


def clean_mask(own: np.ndarray, *, block: int = 4, dilation: int = 4) -> np.ndarray:
    """The cleaned DRE object mask of one stamp.

    Parameters
    ----------
    own : numpy.ndarray
        2-D bool, True on the object's segmentation pixels (``seg == NUMBER``).
    block : int, optional
        Side of the block forced True at the centre (default 4).
    dilation : int, optional
        Number of cross-element dilations (default 4).

    Returns
    -------
    numpy.ndarray
        2-D bool, same shape.

    Examples
    --------
    >>> m = np.zeros((16, 16), bool)
    >>> m[3, 3] = True                          # a detached neighbour fragment: dropped
    >>> out = clean_mask(m, dilation=1)
    >>> int(out.sum()), bool(out[3, 3]), bool(out[8, 8])
    (32, False, True)
    """
    from scipy import ndimage

    m = np.asarray(own, dtype=bool).copy()
    if m.ndim != 2:
        raise ValueError(f"clean_mask needs a 2-D stamp, got shape {m.shape}")
    cy, cx = m.shape[0] // 2, m.shape[1] // 2
    lo = block // 2
    m[max(cy - lo, 0):cy - lo + block, max(cx - lo, 0):cx - lo + block] = True
    labels, _ = ndimage.label(m, structure=CROSS)
    m = labels == labels[cy, cx]
    # fill and dilate inside the component's bounding box grown by dilation + 1 (same result:
    # the box keeps a background ring for the hole filling and room for the growth)
    ys, xs = np.nonzero(m)
    pad = int(dilation) + 1
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, m.shape[0])
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, m.shape[1])
    box = ndimage.binary_fill_holes(m[y0:y1, x0:x1])
    if dilation:
        box = ndimage.binary_dilation(box, structure=CROSS, iterations=int(dilation))
    out = np.zeros_like(m)
    out[y0:y1, x0:x1] = box
    return out


def cut_origin(x_image: float, y_image: float, size: int = 128) -> tuple[int, int, int, int]:
    """Row/column of the centre pixel and of the stamp origin for a catalogue position.

    The 1-based SExtractor position ``(X_IMAGE, Y_IMAGE)`` is the 0-based pixel
    ``(Y_IMAGE - 1, X_IMAGE - 1)``; its nearest pixel (halves round up) lands at stamp index
    ``(size // 2, size // 2)``.

    Returns
    -------
    (cy, cx, y0, x0) : tuple of int
        Centre pixel and first row/column of the stamp in the image.

    Examples
    --------
    >>> cut_origin(101.0, 201.0)
    (200, 100, 136, 36)
    >>> cut_origin(101.5, 201.49)
    (200, 101, 136, 37)
    """
    cx = int(math.floor(float(x_image) - 1.0 + 0.5))
    cy = int(math.floor(float(y_image) - 1.0 + 0.5))
    return cy, cx, cy - size // 2, cx - size // 2
