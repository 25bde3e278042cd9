"""The CPU locate backend: catalog hint → product-photo match → saliency (the ``salient`` backend: U²-Net-p's)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pvtt.errors import RejectItem
from pvtt.locate import LocateSettings, Locator, hint_box
from pvtt.locate.matching import match_photo
from pvtt.locate.saliency import salient_box
from pvtt.types import Box, Clip, ProductImage


# a lifestyle photo's match box and the salient object's box nest (this share of the smaller lies in the larger): the
# salient box is taken
MATCH_SALIENT_NESTED = 0.8


class AutoLocator(Locator):
    """First-frame box from the catalog, the template's own product photo, or saliency (in that order)."""

    name = "auto"

    settings_class = LocateSettings

    def __init__(self, settings: LocateSettings | dict[str, Any] | None = None, **overrides: Any):
        super().__init__(settings, **overrides)
        self.last_attempts: list[str] = []  # what was tried on the last call, for logs and reports

    def salient_box(self, frame: np.ndarray) -> tuple[Box | None, float]:
        """The saliency step: the box of the most salient region of ``frame`` and its contrast (the spectral
        residual's here; :class:`~pvtt.locate.salient.SalientLocator` U²-Net-p's)."""
        return salient_box(frame)

    def _salient(self, frame: np.ndarray) -> tuple[Box | None, float]:
        """:meth:`salient_box`, the box only when its contrast reaches ``locate.min_saliency``."""
        box, contrast = self.salient_box(frame)
        return (box if box is not None and contrast >= self.settings.min_saliency else None), contrast

    def locate(self, clip: Clip, product: ProductImage | None = None, hint: Box | None = None) -> Box:
        s = self.settings
        tried: list[str] = []
        self.last_attempts = tried
        if hint is not None:
            return hint_box(clip, hint)
        frame = clip.frames[0]
        if float(frame.std()) < 2.0:
            raise RejectItem(f"product not found: frame 0 is a flat image (pixel std {frame.std():.2f} < 2)")
        if product is not None and s.use_photo:
            match = match_photo(frame, product.rgba, s.min_inliers, s.ratio, s.match_long_side, s.min_area, s.max_area)
            if match.box is not None and match.box.source == "photo-match" and s.use_saliency:
                # a lifestyle photo's match boxes the hull of its matched features: one part of the product (a box's
                # ribbon), or the product and the table features matched around it; where that hull and the salient
                # object nest, the salient object gives the product's extent
                box, _ = self._salient(frame)
                if box is not None and \
                        match.box.intersection(box) >= MATCH_SALIENT_NESTED * min(match.box.area, box.area):
                    return box
            if match.box is not None:
                return match.box
            tried.append(f"photo match failed: {match.reason}")
        if s.use_saliency:
            box, contrast = self._salient(frame)
            if box is not None:
                return box
            tried.append(f"saliency contrast {contrast:.3f} < {s.min_saliency}")
        raise RejectItem("product not found: " + ("; ".join(tried) or "no catalog box, no photo, saliency disabled"))
