"""The ``salient`` locate backend: ``auto`` (catalog box → product-photo match → saliency) with U²-Net-p's
salient-object map for the saliency step (:mod:`pvtt.models.u2net`).

The spectral residual finds what stands out of a frame's texture — a bright label, a hand, the edge of a table —
and a centre prior does the rest; U²-Net-p was trained on which pixels belong to the object a picture is about. On
the 28 dev clips with reviewer boxes (`benchmarks/bench_locate.py WS --set locate.backend=salient`) it locates 28
(23) and boxes 21 at IoU >= 0.5 with the reviewer's (12); 17 when it takes the largest piece of its map alone
(``locate.salient.join: 1``) instead of every piece of a set.
"""

from __future__ import annotations

import numpy as np

from pvtt.locate.auto import AutoLocator
from pvtt.locate.saliency import network_box
from pvtt.models.u2net import NetworkHolder
from pvtt.types import Box


class SalientLocator(NetworkHolder, AutoLocator):
    """:class:`~pvtt.locate.auto.AutoLocator` whose saliency step is U²-Net-p's; the network is read in
    :meth:`setup` (missing weights stop the stage, naming ``pvtt models download``) and never pickled."""

    name = "salient"

    def network_setting(self) -> tuple[str, bool, str]:
        return self.settings.salient.model, False, "locate.salient.model"

    def salient_box(self, frame: np.ndarray) -> tuple[Box | None, float]:
        self.setup()
        salient = self.settings.salient
        return network_box(self._net, frame, salient.threshold, join=salient.join)
