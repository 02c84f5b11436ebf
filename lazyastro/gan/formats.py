"""Registry declaration of the legacy GAN image-set layout (light module: no h5py/dask at import)."""

from __future__ import annotations

from pathlib import Path

from ..io.registry import Format, Param

__all__ = ["ImageSetFormat"]


class ImageSetFormat(Format):
    """Legacy GAN image set: HDF5 with one 2-D dataset per image (``"0"``, ``"1"``, ...) at the root.

    Examples
    --------
    >>> ImageSetFormat().kind
    'series'
    """

    name = "gan-imageset"
    extensions = (".h5", ".hdf5")
    kind = "series"
    priority = 8
    description = "legacy GAN image set: HDF5 datasets '0', '1', ... at the root (+ lognorminfo)"
    magic = (b"\x89HDF\r\n\x1a\n",)
    reader = "lazyastro.gan.imageset:open_imageset"
    writer = "lazyastro.gan.imageset:write_imageset"
    sniffer = "lazyastro.gan.imageset:sniff_imageset"
    open_params = (Param("images_per_chunk", int, "images per dask block (default: ~64 MiB)", min=1),)
    write_params = (
        Param("lognorminfo", "object", "[Lmin, Lmax] to store (default: from the array's attrs)"),
        Param("musigmainfo", "object", "[mu, sigma] to store (default: from the array's attrs)"),
        Param("overwrite", "object", "replace an existing output", default=False),
    )

    def sniff(self, path: Path) -> bool:
        return Path(path).is_file() and super().sniff(path)
