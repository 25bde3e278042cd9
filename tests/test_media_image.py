"""Image IO: every common format to RGBA uint8, EXIF orientation applied, clear errors on non-images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pvtt.errors import BadInput
from pvtt.media.image import load_image_rgba


def _save(tmp_path, name, image, **kwargs):
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


@pytest.mark.parametrize("name, fmt", [("a.jpg", "JPEG"), ("a.webp", "WEBP"), ("a.bmp", "BMP"), ("a.tif", "TIFF")])
def test_common_formats_decode_to_rgba(tmp_path, name, fmt):
    image = Image.new("RGB", (40, 30), (200, 100, 50))
    rgba = load_image_rgba(_save(tmp_path, name, image, format=fmt))
    assert rgba.shape == (30, 40, 4) and rgba.dtype == np.uint8
    assert np.abs(rgba[15, 20, :3].astype(int) - [200, 100, 50]).max() < 8
    assert (rgba[..., 3] == 255).all()


def test_png_alpha_is_kept(tmp_path):
    array = np.zeros((20, 20, 4), np.uint8)
    array[5:15, 5:15] = (10, 20, 30, 255)
    rgba = load_image_rgba(_save(tmp_path, "a.png", Image.fromarray(array)))
    assert rgba[0, 0, 3] == 0 and rgba[10, 10, 3] == 255


def test_sixteen_bit_is_scaled_not_clipped(tmp_path):
    array = np.full((10, 10), 32768, np.uint16)
    rgba = load_image_rgba(_save(tmp_path, "a.png", Image.fromarray(array)))
    assert 120 <= rgba[0, 0, 0] <= 136  # half of full scale, not saturated at 255


def test_cmyk_converts(tmp_path):
    image = Image.new("CMYK", (10, 10), (0, 255, 255, 0))  # pure red in CMYK
    rgba = load_image_rgba(_save(tmp_path, "a.jpg", image, format="JPEG"))
    assert rgba[5, 5, 0] > 200 and rgba[5, 5, 1] < 60


def test_exif_orientation_is_applied(tmp_path):
    array = np.zeros((20, 40, 3), np.uint8)
    array[:, :10] = 255  # white on the left of the stored 40x20 image
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    rgba = load_image_rgba(_save(tmp_path, "a.jpg", image, format="JPEG", exif=exif))
    assert rgba.shape[:2] == (40, 20)  # displayed portrait
    assert rgba[:10, :, 0].mean() > 200  # the left band is now on top


def test_not_an_image(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_text("definitely not a jpeg")
    with pytest.raises(BadInput, match="not an image"):
        load_image_rgba(path)


def test_truncated_image(tmp_path):
    path = _save(tmp_path, "a.png", Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(BadInput):
        load_image_rgba(path)


def test_empty_and_missing(tmp_path):
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(BadInput, match="empty"):
        load_image_rgba(tmp_path / "e.png")
    with pytest.raises(BadInput, match="not found"):
        load_image_rgba(tmp_path / "missing.png")


def test_real_product_photos_decode(dev_data):
    for path in sorted((dev_data / "images").rglob("*_source.*")):
        rgba = load_image_rgba(path)
        assert rgba.ndim == 3 and rgba.shape[2] == 4 and min(rgba.shape[:2]) > 100, path
