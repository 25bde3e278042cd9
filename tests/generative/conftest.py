"""Fixtures; the tiny components themselves are in tiny_pipelines.py (importable by name)."""

import numpy as np
import pytest

from pvtt.types import Clip
from tiny_pipelines import *  # noqa: F401,F403


@pytest.fixture
def small_clip() -> Clip:
    frames = render_template(0, 0, height=32, width=32, frames_per_shot=9)[:9]
    return Clip("gen-tiny", np.ascontiguousarray(frames), 20.0, template_id="tiny")


@pytest.fixture
def product_rgba() -> np.ndarray:
    import cv2

    return cv2.resize(product_photo(1, 0, size=64), (24, 24), interpolation=cv2.INTER_AREA)
