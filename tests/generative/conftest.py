"""Fixtures; the tiny components themselves are in tiny_pipelines.py (importable by name)."""

import numpy as np
import pytest

from pvtt.types import Clip
from tiny_pipelines import *  # noqa: F401,F403


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads; on a busy 2-core machine two threads made SVD tests ~10x slower.
    Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def svd():
    return tiny_svd()  # noqa: F405


@pytest.fixture
def small_clip() -> Clip:
    frames = render_template(0, 0, height=32, width=32, frames_per_shot=9)[:9]
    return Clip("gen-tiny", np.ascontiguousarray(frames), 20.0, template_id="tiny")


@pytest.fixture
def product_rgba() -> np.ndarray:
    import cv2

    return cv2.resize(product_photo(1, 0, size=64), (24, 24), interpolation=cv2.INTER_AREA)
