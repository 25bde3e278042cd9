"""The salient-object map curate's object checks read (``curate.max_object_missed``, ``max_mask_off_object``):
U²-Net-p (:mod:`pvtt.models.u2net`) on any RGB crop, at the crop's size."""

from __future__ import annotations

import cv2
import numpy as np

from pvtt.curate import SalientObjectSettings
from pvtt.models.u2net import NetworkHolder, saliency
from pvtt.registry import Backend


class SalientObjects(NetworkHolder, Backend):
    """``objects(rgb) -> (H, W)`` float map in [0, 1] of ``rgb``'s salient object; built from
    :class:`~pvtt.curate.SalientObjectSettings`, the network read in :meth:`setup` (missing weights stop the stage,
    naming ``pvtt models download``) and never pickled."""

    name = "salient"
    stage = "curate"
    settings_class = SalientObjectSettings

    def network_setting(self) -> tuple[str, bool, str]:
        return self.settings.model, False, "curate.salient.model"

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        self.setup()
        height, width = rgb.shape[:2]
        return cv2.resize(saliency(self._net, rgb, self.settings.input_size), (width, height),
                          interpolation=cv2.INTER_LINEAR)
