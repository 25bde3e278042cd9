"""Compact mask files: bit-packed masks, their shape and per-frame confidence in one ``.npz``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pvtt.errors import BadInput
from pvtt.types import Masks


def save_masks(path: str | Path, masks: Masks) -> None:
    """Write ``masks`` to ``path`` exactly (no suffix is added): ``np.packbits`` of the data + shape + confidence."""
    data = np.asarray(masks.data, bool)
    confidence = (np.ones(data.shape[0], np.float32) if masks.confidence is None
                  else np.asarray(masks.confidence, np.float32))
    with open(path, "wb") as f:
        np.savez_compressed(f, bits=np.packbits(data.ravel()), shape=np.array(data.shape, np.int64),
                            confidence=confidence)


def load_masks(path: str | Path) -> Masks:
    """Read masks written by :func:`save_masks`."""
    try:
        with np.load(path) as z:
            shape = tuple(int(v) for v in z["shape"])
            data = np.unpackbits(z["bits"], count=int(np.prod(shape))).astype(bool).reshape(shape)
            return Masks(data, z["confidence"].astype(np.float32))
    except (OSError, KeyError, ValueError) as exc:
        raise BadInput(f"cannot read masks from {path}: {exc}") from exc
