"""Omega (specimen rotation) metadata: wedges of constant step (hexrd ``imageseries.omega``).

``metadata["omega"]`` is ``(nframes, 2)``: ``[omega_start, omega_end]`` of each
frame, in degrees. Consecutive frames with the same step and contiguous ranges
form a *wedge*.

>>> w = OmegaWedges(4)
>>> w.addwedge(0.0, 2.0, 2); w.addwedge(10.0, 11.0, 2)
>>> w.omegas.tolist()
[[0.0, 1.0], [1.0, 2.0], [10.0, 10.5], [10.5, 11.0]]
"""

from __future__ import annotations

import numpy as np

from .baseclass import ImageSeries
from .errors import OmegaSeriesError

__all__ = ["OmegaImageSeries", "OmegaWedges", "OmegaSeriesError"]


class OmegaImageSeries(ImageSeries):
    """An image series with valid omega metadata, split into wedges.

    Parameters
    ----------
    ims : image series
        With ``metadata["omega"]`` of shape ``(len(ims), 2)``, each range increasing.

    Raises
    ------
    OmegaSeriesError
        No omega metadata, a frame-count mismatch, or a non-increasing range.
    """

    DFLT_TOL = 1.0e-6
    TAU = 360

    def __init__(self, ims):
        meta = ims.metadata
        if "omega" not in meta:
            raise OmegaSeriesError("Imageseries has no omega metadata")
        om = np.asarray(meta["omega"], dtype=np.float64)
        if om.ndim != 2 or om.shape[1] != 2 or om.shape[0] != len(ims):
            raise OmegaSeriesError(
                f"omega array mismatch: array has {om.shape[0] if om.ndim else 0} frames, expecting {len(ims)}"
            )
        self._omega = om
        super().__init__(ims)
        self._make_wedges()

    def _make_wedges(self, tol: float = DFLT_TOL) -> None:
        om = self._omega
        nf = om.shape[0]
        steps = om[:, 1] - om[:, 0]
        if nf and (steps <= 0).any():
            raise OmegaSeriesError(f"omega array must be increasing (frame {int(np.argmax(steps <= 0))})")
        # a new wedge where the step changes or the range is not contiguous with the previous frame
        breaks = np.flatnonzero((np.abs(np.diff(steps)) > tol) | (np.abs(om[1:, 0] - om[:-1, 1]) > tol)) + 1
        starts = np.concatenate([[0], breaks, [nf]]).astype(int)
        nw = len(starts) - 1
        self._wedge_om = np.zeros((nw, 3))
        self._wedge_f = np.zeros((nw, 2), dtype=int)
        self._omegawedges = OmegaWedges(nf)
        for w in range(nw):
            f0, f1 = starts[w], starts[w + 1]
            ostart, ostop = om[f0, 0], om[f1 - 1, 1]
            self._omegawedges.addwedge(ostart, ostop, f1 - f0)
            self._wedge_om[w] = (ostart, ostop, (ostop - ostart) / (f1 - f0))
            self._wedge_f[w] = (f0, f1 - f0)

    @property
    def omega(self) -> np.ndarray:
        """``(nframes, 2)`` omega ranges."""
        return self._omega

    @property
    def omegawedges(self) -> OmegaWedges:
        """The wedges as an :class:`OmegaWedges`."""
        return self._omegawedges

    @property
    def nwedges(self) -> int:
        """Number of wedges."""
        return self._omegawedges.nwedges

    def wedge(self, i: int) -> dict:
        """Wedge ``i``: ``ostart``, ``ostop``, ``nsteps`` and ``delta`` (step)."""
        d = self._omegawedges.wedges[i]
        d.update(delta=(d["ostop"] - d["ostart"]) / d["nsteps"])
        return d

    def omega_to_frame(self, om: float) -> tuple[int, int]:
        """``(frame, wedge)`` whose range holds ``om`` (modulo 360), or ``(-1, -1)``."""
        for w, (omin, omax, step) in enumerate(self._wedge_om):
            o = omin + np.mod(om - omin, self.TAU)
            if o < omax:
                return int(self._wedge_f[w, 0] + int(np.floor((o - omin) / step))), w
        return -1, -1

    def omegarange_to_frames(self, omin: float, omax: float):
        """Frames covering ``omin..omax`` (a list), across a 360-degree wrap between adjacent wedges.

        Returns ``()`` when either end is outside every wedge, or the range is not covered.
        """
        f0, w0 = self.omega_to_frame(omin)
        f1, w1 = self.omega_to_frame(omax)
        if w0 < 0 or w1 < 0:
            return ()
        if w0 == w1 and f1 > f0:
            return list(range(f0, f1 + 1))
        end0, start1 = self._wedge_om[w0, 1], self._wedge_om[w1, 0]
        if np.mod(np.abs(start1 - end0), self.TAU) < self.DFLT_TOL:
            last0 = self._wedge_f[w0, 0] + self._wedge_f[w0, 1]
            return list(range(f0, last0)) + list(range(self._wedge_f[w1, 0], f1 + 1))
        return ()


class OmegaWedges:
    """Piecewise-linear omega ranges, built wedge by wedge.

    Parameters
    ----------
    nframes : int
        Number of frames the wedges must cover.
    """

    def __init__(self, nframes: int):
        self.nframes = nframes
        self._wedges: list[dict] = []

    @property
    def omegas(self) -> np.ndarray:
        """``(nframes, 2)`` omega ranges of the wedges.

        Raises
        ------
        OmegaSeriesError
            If the wedges do not hold ``nframes`` steps.
        """
        if self.nframes != self.wframes:
            raise OmegaSeriesError(
                f"number of frames ({self.nframes}) does not match number of wedge frames ({self.wframes})"
            )
        parts = []
        for w in self._wedges:
            edges = np.linspace(w["ostart"], w["ostop"], w["nsteps"] + 1)
            parts.append(np.stack([edges[:-1], edges[1:]], axis=1))
        return np.concatenate(parts) if parts else np.zeros((0, 2))

    @property
    def nwedges(self) -> int:
        """Number of wedges."""
        return len(self._wedges)

    @property
    def wedges(self) -> list[dict]:
        """The wedges: dicts with ``ostart``, ``ostop``, ``nsteps``."""
        return self._wedges

    def addwedge(self, ostart: float, ostop: float, nsteps: int, loc: int | None = None) -> None:
        """Add a wedge of ``nsteps`` equal steps from ``ostart`` to ``ostop`` (at ``loc``, default last)."""
        self._wedges.insert(self.nwedges if loc is None else loc,
                            {"ostart": ostart, "ostop": ostop, "nsteps": nsteps})

    def delwedge(self, i: int) -> None:
        """Delete wedge ``i``."""
        self._wedges.pop(i)

    @property
    def wframes(self) -> int:
        """Number of frames in the wedges."""
        return int(sum(w["nsteps"] for w in self._wedges))

    def save_omegas(self, fname) -> None:
        """Save :attr:`omegas` to a ``.npy`` file."""
        np.save(fname, self.omegas)
