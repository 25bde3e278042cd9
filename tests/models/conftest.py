"""Fixtures; the tiny components themselves are in tiny_models.py (importable by name)."""

import numpy as np
import pytest

from pvtt.types import Clip
from tiny_models import *  # noqa: F401,F403


@pytest.fixture
def clip() -> Clip:
    return tiny_clip()
