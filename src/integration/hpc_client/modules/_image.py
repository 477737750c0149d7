"""Read an image file once, the way every image module needs it: upright, 8-bit, with its resolution.

What this handles (and turns into :class:`ImageUnreadable` when it cannot):

* EXIF orientation: the pixels are rotated as the camera meant, so a sheet stored sideways is read upright;
* 16-bit TIFF (greyscale or RGB, which Pillow cannot load) through tifffile, scaled to 8 bits;
* multi-page TIFF: the first page is the image, the others are reported in ``notes``;
* raw camera files (DNG, CR2/CR3, RAF, NEF, ARW, ...) through rawpy, demosaiced once, never held twice;
* palette, CMYK, LA/RGBA and 1-bit images: converted to RGB or L;
* the pixel limit: an explicit, configurable limit checked on the header before any pixel is decoded (a 300 MP
  file is refused without allocating 900 MB); Pillow's own guard is raised above it, never removed;
* failures: undecodable bytes -> ImageUnreadable (the file's fault); out of memory or an I/O error that blames
  the node (EIO, ESTALE, ENOSPC, ...) -> NodeResourceError (retried); decoder warnings -> ``notes``.
"""

from __future__ import annotations

import errno
import numbers
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps

from integration.errors import ImageUnreadable, NodeResourceError

__all__ = ["DEFAULT_MAX_MEGAPIXELS", "RAW_SUFFIXES", "LoadedImage", "load_image", "resolution_of"]

#: Herbarium scans reach 100-200 MP; anything larger is refused unless the settings allow it.
DEFAULT_MAX_MEGAPIXELS = 250.0
RAW_SUFFIXES = frozenset({".dng", ".cr2", ".cr3", ".raf", ".nef", ".arw", ".orf", ".rw2", ".pef", ".srw", ".3fr"})
_TIFF_SUFFIXES = frozenset({".tif", ".tiff"})
#: A resolution tag is believed only inside this range, and only if the page it implies is not absurdly large.
_PLAUSIBLE_PPI = (100.0, 4800.0)
_MAX_PAGE_INCHES = 60.0

#: errno values that blame the node (memory, disk, network file system), not the file: the job is retried.
_NODE_ERRNOS = frozenset({errno.EIO, errno.ENOSPC, errno.ESTALE, errno.ENOMEM, errno.ETIMEDOUT, errno.EAGAIN,
                          errno.EDQUOT, errno.ENFILE, errno.EMFILE})  # fmt: skip
#: EXIF/TIFF orientation -> the transpose that makes the image upright (as Pillow's exif_transpose does).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}  # fmt: skip


@dataclass(frozen=True)
class LoadedImage:
    """The upright 8-bit pixels of one file (``RGB`` or ``L``) and what was learnt while reading it."""

    image: Image.Image
    path: Path
    source_format: str
    dpi: float | None  # the file's own resolution tag, if any (not judged here; see resolution_of)
    pages: int = 1
    notes: tuple[str, ...] = field(default=())

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    def grey(self) -> np.ndarray:
        """The image as a 2-D uint8 array (a view when it is greyscale already)."""
        return np.asarray(self.image if self.image.mode == "L" else self.image.convert("L"))


def load_image(path: Path, *, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS) -> LoadedImage:
    """Read ``path`` as an upright ``RGB``/``L`` image; raises :class:`ImageUnreadable` with a plain reason."""
    if not path.is_file():
        raise ImageUnreadable(f"{path} does not exist or is not a file", path=str(path))
    if path.suffix.lower() in RAW_SUFFIXES:
        return _load_raw(path, max_megapixels)
    # Our limit is checked on the header below; Pillow's own guard must not fire first (it warns at half of it).
    Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, int(max_megapixels * 2e6))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # Pillow warns about corrupt EXIF and the like: notes, not crashes
        try:
            with Image.open(path) as opened:
                _check_pixels(path, opened.size, max_megapixels)
                pages = getattr(opened, "n_frames", 1)
                dpi = _dpi_tag(opened.info.get("dpi"))
                source_format = opened.format or path.suffix.lstrip(".").upper()
                if _needs_tifffile(opened):
                    orientation = opened.getexif().get(0x0112, 1)
                    image = _tiff_first_page_8bit(path)
                    if orientation in _ORIENTATION:
                        image = image.transpose(_ORIENTATION[orientation])
                else:
                    opened.seek(0)
                    opened.load()
                    image = _eight_bit(_upright(opened), path)
        except (ImageUnreadable, NodeResourceError):
            raise
        except Exception as exc:  # a decoder fed hostile bytes raises anything (struct.error, IndexError, ...)
            raise _failure(path, exc, "cannot be decoded") from exc
    notes = tuple(f"decoder warning: {warning.message}" for warning in caught)
    if pages > 1:
        notes += (f"multi-page TIFF with {pages} pages: the first page was used",)
    return LoadedImage(image=image, path=path, source_format=source_format, dpi=dpi, pages=pages, notes=notes)


def resolution_of(loaded: LoadedImage, *, configured_ppi: float) -> tuple[float, Literal["file", "configured"]]:
    """The image's pixels per inch: its own tag when plausible, else the configured sensor resolution."""
    dpi = loaded.dpi
    if dpi is not None and _PLAUSIBLE_PPI[0] <= dpi <= _PLAUSIBLE_PPI[1] and max(loaded.size) / dpi <= _MAX_PAGE_INCHES:
        return dpi, "file"
    return configured_ppi, "configured"


def _check_pixels(path: Path, size: tuple[int, int], max_megapixels: float) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageUnreadable(f"{path.name} has no pixels ({width}x{height})", path=str(path))
    if width * height > max_megapixels * 1e6:
        raise ImageUnreadable(
            f"{path.name} has {width * height / 1e6:.0f} MP ({width}x{height}), more than the {max_megapixels:.0f} MP "
            "allowed (setting max_megapixels)",
            path=str(path),
        )


def _failure(path: Path, exc: Exception, what: str) -> NodeResourceError | ImageUnreadable:
    """Out of memory, or an I/O error with an errno that blames the node: retry; anything else: the file."""
    if isinstance(exc, MemoryError) or (isinstance(exc, OSError) and exc.errno in _NODE_ERRNOS):
        return NodeResourceError(f"{path.name}: the node could not read it now: {exc!r}")
    return ImageUnreadable(f"{path.name} {what}: {exc}", path=str(path))


def _dpi_tag(value: object) -> float | None:
    """Pillow's ``dpi`` info: a pair of numbers (TIFF gives IFDRational, JPEG/PNG floats or ints)."""
    if isinstance(value, tuple) and value and isinstance(value[0], numbers.Real) and float(value[0]) > 0:
        return float(value[0])
    return None


def _needs_tifffile(opened: Image.Image) -> bool:
    """Pillow cannot give 8-bit pixels of 16-bit RGB TIFFs (and reads 16-bit grey in a mode we must rescale)."""
    return opened.format == "TIFF" and (
        opened.mode.startswith("I;16") or opened.mode in ("I", "F") or _is_16bit_rgb(opened)
    )


def _is_16bit_rgb(opened: Image.Image) -> bool:
    bits = opened.tag_v2.get(258) if hasattr(opened, "tag_v2") else None  # BitsPerSample
    return isinstance(bits, tuple) and len(bits) >= 3 and max(bits) > 8


def _tiff_first_page_8bit(path: Path) -> Image.Image:
    import tifffile

    try:
        array = np.asarray(tifffile.imread(path, key=0))
    except Exception as exc:  # tifffile raises plain Exceptions of many kinds on broken files
        raise _failure(path, exc, "cannot be decoded as TIFF") from exc
    array = _eight_bit_array(array)
    if array.ndim == 3 and array.shape[2] >= 3:
        return Image.fromarray(np.ascontiguousarray(array[:, :, :3]), mode="RGB")
    if array.ndim == 2:
        return Image.fromarray(array, mode="L")
    raise ImageUnreadable(f"{path.name} has an unsupported TIFF layout {array.shape}", path=str(path))


def _eight_bit_array(array: np.ndarray) -> np.ndarray:
    """8 bits per sample, keeping the exposure: 16-bit data shifted by 8 (by 4 when it only uses 12 bits, as
    many cameras' data do), shifted in place so a 200 MP scan is not copied at a wider type; floats in 0..1."""
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind == "f":
        top = 255.0 if float(np.nanmax(array)) > 1.0 else 1.0
        scaled: np.ndarray = np.clip(np.nan_to_num(array) * (255.0 / top), 0, 255).astype(np.uint8)
        return scaled
    array = np.clip(array, 0, 65535) if array.dtype.kind == "i" or array.itemsize > 2 else array
    shift = 4 if int(array.max()) <= 4095 else 8
    if not array.flags.writeable:
        array = array.copy()
    np.right_shift(array, shift, out=array)
    return array.astype(np.uint8)


def _upright(opened: Image.Image) -> Image.Image:
    """Apply the EXIF orientation (a no-op copy-free return when there is none)."""
    return ImageOps.exif_transpose(opened) or opened


def _eight_bit(image: Image.Image, path: Path) -> Image.Image:
    """``RGB`` or ``L``: palettes, CMYK, alpha and 1-bit pictures converted; alpha flattened onto white."""
    if image.mode in ("RGB", "L"):
        return image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode == "1":
        return image.convert("L")
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):  # 16-bit PNG and the like: scale, not clip
        return Image.fromarray(_eight_bit_array(np.asarray(image)), mode="L")
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ImageUnreadable(f"{path.name}: cannot convert mode {image.mode} to RGB: {exc}", path=str(path)) from exc


def _load_raw(path: Path, max_megapixels: float) -> LoadedImage:
    """Demosaic a raw camera file once into 8-bit RGB (camera white balance, no auto-brightening)."""
    import rawpy

    try:
        with rawpy.imread(str(path)) as raw:
            sizes = raw.sizes
            _check_pixels(path, (int(sizes.width), int(sizes.height)), max_megapixels)
            rgb = raw.postprocess(use_camera_wb=True, no_auto_bright=True, output_bps=8)
    except ImageUnreadable:
        raise
    except Exception as exc:  # LibRaw's own errors, and whatever hostile bytes provoke
        raise _failure(path, exc, "is not a readable raw file") from exc
    image = Image.fromarray(rgb, mode="RGB")  # shares the demosaiced buffer; no second copy
    return LoadedImage(image=image, path=path, source_format=path.suffix.lstrip(".").upper(), dpi=None)
