"""The enclosed backdrop peel (`cutout.peel_enclosed`) on the dev photos and on a generated plate and ring.

Usage:
  python benchmarks/cutout_enclosed.py [PHOTO_DIR ...]   (default: ../shared/data/pvtt-dev/images)

For each photo on a plain backdrop: the backdrop-like regions that GrabCut's cut encloses (reaching no backdrop
outside it), largest first, as shares of the cut — what `peel_enclosed` (0.15) compares against — and their median
distance to the backdrop model (8-bit Lab levels; `peel_exact`, 3, peels any below it), the support ratio
with the cut's holes filled and without, and whether the cut has a cutout problem (`pvtt.cutout.cutout_problems`). Then a generated photo pair: a plain ring (a dark
12-px rim, the backdrop inside) and a plate (the same rim around a face of the backdrop's white): how much of each
cut's middle stays opaque with the peel on and off.
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

import pvtt.cutout.classical as classical
from pvtt.catalog import IMAGE_EXTENSIONS
from pvtt.cutout import CutoutSettings, cutout_problems, support_ratio
from pvtt.media.image import load_image_rgba
from pvtt.types import ProductImage

_seen: dict[str, list[float]] = {}
_peel = classical._peel_enclosed


def _recording(fg: np.ndarray, backdrop: np.ndarray, enclosed: float, dist: np.ndarray, exact: float):
    comp, share = classical.enclosed_regions(fg, backdrop)
    largest = np.argsort(share)[::-1][:3]
    _seen["enclosed"] = [float(share[i]) for i in largest if share[i] > 0]
    _seen["levels"] = [float(np.median(dist[comp == i])) for i in largest if share[i] > 0]
    return _peel(fg, backdrop, enclosed, dist, exact)


def main() -> None:
    classical._peel_enclosed = _recording
    folders = [Path(p) for p in sys.argv[1:]] or [Path(__file__).resolve().parents[2] / "shared/data/pvtt-dev/images"]
    photos = sorted(p for f in folders for p in f.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    settings = CutoutSettings()
    cutter = classical.ClassicalCutter(settings)
    for path in photos:
        _seen.clear()
        try:
            result = cutter.cut_out(ProductImage(path.stem, load_image_rgba(path)))
        except Exception as exc:  # noqa: BLE001  (a photo with no separable product)
            print(f"{path.stem:10} {exc}")
            continue
        if "enclosed" not in _seen:
            print(f"{path.stem:10} busy backdrop (confidence {result.confidence:.2f}): not peeled")
            continue
        measures, problems = cutout_problems(result, settings)
        alpha = result.rgba[..., 3] > 127
        print(f"{path.stem:10} enclosed backdrop-like regions {[round(x, 3) for x in _seen['enclosed']]} (median "
              f"levels from the backdrop {[round(x, 1) for x in _seen['levels']]}); support "
              f"ratio {measures['support']:.2f} (holes not filled: {support_ratio(alpha, fill_holes=False):.2f}); "
              f"problems: {problems or 'none'}")
    rng = np.random.default_rng(0)
    sweep = (np.full((600, 800, 3), 235.0) - np.linspace(0, 15, 600)[:, None, None]
             + rng.normal(0, 1.5, (600, 800, 1))).clip(0, 255).astype(np.uint8)
    ring = sweep.copy()
    cv2.circle(ring, (400, 300), 200, (60, 60, 80), 12)
    plate = ring.copy()
    cv2.circle(plate, (400, 300), 194, (238, 236, 232), -1)
    for name, photo in (("ring", ring), ("plate", plate)):
        for enclosed in (1.0, 0.15):
            rgba = classical.ClassicalCutter(CutoutSettings(peel_enclosed=enclosed)).cut_out(photo).rgba
            alpha = rgba[..., 3] > 127
            h, w = alpha.shape
            middle = float(alpha[h // 2 - 40:h // 2 + 40, w // 2 - 40:w // 2 + 40].mean())
            print(f"generated {name:5} peel_enclosed {enclosed}: middle {middle:.2f} opaque")


if __name__ == "__main__":
    main()
