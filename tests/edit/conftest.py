"""Generated swap cases with known truth for the editing stages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pvtt.bench.make import draw_params, make_case
from pvtt.demo import draw_product
from pvtt.media.image import load_image_rgba
from pvtt.media.video import read_video
from pvtt.testmedia import textured_background
from pvtt.types import Clip, Masks, Tracks


@dataclass
class Case:
    root: Path
    clip: Clip
    video_b: np.ndarray
    masks_a: Masks
    masks_b: np.ndarray
    tracks_a: Tracks
    background: np.ndarray  # the true clean background (frames without any product)
    product_b: np.ndarray  # RGBA as rendered
    photo_b: np.ndarray  # RGB catalog photo of B


def build_case(root: Path, seed: int = 3, occluder: bool = False, frames: int = 24, size=(256, 192)) -> Case:
    rng = np.random.default_rng(seed)
    params = draw_params(rng, frames, size[0], size[1], occluder=occluder, lighting=False)
    still = textured_background(size[1] * 2, size[0] * 2, seed)
    product_a = draw_product(0, 200, seed)  # mug
    product_b = draw_product(1, 200, seed + 1)  # bottle
    make_case(root, still, product_a, product_b, params)
    video_a, fps = read_video(root / "video_a.mp4")
    video_b, _ = read_video(root / "video_b.mp4")
    truth = np.load(root / "truth.npz")
    from pvtt.bench.make import backgrounds

    bg = backgrounds(still, params)
    return Case(root, Clip("case", video_a, fps), video_b, Masks(truth["masks_a"]), truth["masks_b"],
                Tracks(truth["points_a"].astype(np.float32), truth["visible_a"]), bg,
                load_image_rgba(root / "product_b.png"), load_image_rgba(root / "photo_b.png")[..., :3])


@pytest.fixture(scope="session")
def case(tmp_path_factory) -> Case:
    return build_case(tmp_path_factory.mktemp("case"))


@pytest.fixture(scope="session")
def occluded_case(tmp_path_factory) -> Case:
    return build_case(tmp_path_factory.mktemp("occ"), seed=5, occluder=True)


@pytest.fixture(scope="session")
def edited(case):
    """The case built by the default CPU backends: (cutout, erased, inserted, propagated)."""
    from pvtt.compose import box_of_mask
    from pvtt.cutout import make_cutter
    from pvtt.erase import make_eraser
    from pvtt.insert import make_inserter
    from pvtt.propagate import make_propagator
    from pvtt.types import ProductImage

    photo = np.dstack([case.photo_b, np.full(case.photo_b.shape[:2], 255, np.uint8)])
    cut = make_cutter().cut_out(ProductImage("b", photo))
    erased = make_eraser().erase(case.clip, case.masks_a)
    m0 = case.masks_a.data[0]
    # B at A's area, as the truth renders it (no cover growth), so placement can be compared with the truth
    inserted = make_inserter(cover_growth=1.0).insert(case.clip.frames[0], erased.frames[0], m0, box_of_mask(m0),
                                                      cut.rgba)
    result = make_propagator().propagate(case.clip, erased.frames, case.masks_a, case.tracks_a, inserted)
    return cut, erased, inserted, result
