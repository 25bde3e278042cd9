"""Image reading to RGBA and PNG writing (Pillow).

Any format Pillow reads (JPEG, PNG with or without alpha, WebP, TIFF, BMP, GIF …), 16-bit and
CMYK included, comes out as ``uint8`` RGBA in the orientation its EXIF tag asks for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pvtt.errors import BadInput

DEFAULT_MAX_PIXELS = 8192 * 8192


def _to_rgba(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        data = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if data.max() > 255 else 255.0
        image = Image.fromarray(np.clip(data / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    elif image.mode == "F":
        data = np.asarray(image, dtype=np.float64)
        lo, hi = float(data.min()), float(data.max())
        scaled = (data - lo) / (hi - lo) if hi > lo else np.zeros_like(data)
        image = Image.fromarray((scaled * 255.0 + 0.5).astype(np.uint8), mode="L")
    elif image.mode == "CMYK":
        image = image.convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGBA")


def load_image_rgba(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` to an ``(H, W, 4)`` ``uint8`` RGBA array; raise :class:`BadInput` if it is not an image."""
    path = Path(path)
    if not path.exists():
        raise BadInput(f"image not found: {path}")
    if path.stat().st_size == 0:
        raise BadInput(f"image file is empty (0 bytes): {path}")
    try:
        with Image.open(path) as image:
            if image.width * image.height > max_pixels:
                raise BadInput(
                    f"image {image.width}x{image.height} exceeds the limit of {max_pixels / 1e6:.0f} MP: {path}"
                )
            image = ImageOps.exif_transpose(image)
            image.load()
            rgba = np.asarray(_to_rgba(image), dtype=np.uint8)
    except UnidentifiedImageError:
        raise BadInput(f"not an image (Pillow cannot identify the format): {path}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadInput(f"image is corrupt or truncated ({exc}): {path}") from None
    if rgba.shape[0] < 2 or rgba.shape[1] < 2:
        raise BadInput(f"image is too small ({rgba.shape[1]}x{rgba.shape[0]}): {path}")
    return np.ascontiguousarray(rgba)


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write an ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` ``uint8`` array as PNG (format fixed, any suffix)."""
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    Image.fromarray(array).save(path, format="PNG")
