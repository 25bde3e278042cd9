"""Generated clips with known truth for the perception stages."""

from __future__ import annotations

import numpy as np
import pytest

from pvtt.media.image import load_image_rgba
from pvtt.media.video import read_video
from pvtt.testmedia import panning_frames, textured_background
from pvtt.types import Clip, ProductImage


def render_case(folder, seed: int = 3, frames: int = 30, width: int = 320, height: int = 240):
    from pvtt.bench.make import draw_params, make_case
    from pvtt.demo import draw_product

    rng = np.random.default_rng(seed)
    params = draw_params(rng, frames, width, height, occluder=False, lighting=False)
    make_case(folder, textured_background(height + 120, width + 160, seed), draw_product(0, 200, seed),
              draw_product(1, 200, seed + 1), params)
    data, fps = read_video(folder / "video_a.mp4")
    truth = dict(np.load(folder / "truth.npz"))
    photo = ProductImage("photo_a", load_image_rgba(folder / "photo_a.png"))
    return Clip(f"case{seed}", data, fps), truth, photo


@pytest.fixture(scope="session")
def case(tmp_path_factory):
    """A 30-frame 320x240 product moving by known homographies over a panning textured background."""
    return render_case(tmp_path_factory.mktemp("case") / "c")


@pytest.fixture(params=["fixture", "crf16-fast-2threads"])
def encoded_case(request, case, tmp_path, monkeypatch):
    """The perception case as rendered for every test, and the same scene encoded at crf 16 (preset fast, two
    encoder threads): there the old mask alignment put the stripe's points 12-22 px off (median 11.4 px)."""
    if request.param == "fixture":
        return case
    import pvtt.bench.make
    from pvtt.media.video import VideoWriter

    def write_video(path, frames, fps, crf=18):
        with VideoWriter(path, fps, frames.shape[2], frames.shape[1], crf=16, preset="fast", threads=2) as writer:
            for rgb in frames:
                writer.write(rgb)

    monkeypatch.setattr(pvtt.bench.make, "write_video", write_video)
    return render_case(tmp_path / "c")


@pytest.fixture(scope="session")
def static_clip() -> Clip:
    frame = textured_background(240, 320, 7)
    return Clip("static", np.repeat(frame[None], 20, axis=0), 20.0)


@pytest.fixture(scope="session")
def flat_clip() -> Clip:
    return Clip("flat", np.full((12, 240, 320, 3), 128, np.uint8), 20.0)


@pytest.fixture(scope="session")
def panning_clip() -> Clip:
    return Clip("pan", panning_frames(textured_background(400, 560, 11), 20, 240, 320, (3.0, 1.0)), 20.0)
