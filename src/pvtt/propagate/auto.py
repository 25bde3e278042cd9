"""propagate ``auto``: per pair, the strategy that fits A's and B's shapes, A's motion and the weights at hand.

The rule (the seeds': shape similarity, motion, weights present), in order:

1. ``warp`` when the model strategies are off (``models: false``) or no family has weights, when B's alpha
   is unknown, or when A barely moves (its tracked points move less than ``static_motion`` of its box
   diagonal): nothing for a generative model to follow, and warp keeps B's pixels exactly;
2. shapes **agree** (IoU of the normalized silhouettes ≥ ``iou_threshold``): A's geometry or attention is
   valid for B — ``vace-depth`` (VACE family) or ``i2vedit`` (SVD family);
3. shapes **differ**: only A's motion may be carried, by its tracked points — ``vace-points`` or
   ``svd-points``; ``warp`` when the clip has no tracked points.

The families are tried in ``prefer`` order (``svd`` is considered only with ``svd: true``); a family
whose weights are missing (its :class:`~pvtt.models.ModelNotAvailable` message is kept) is skipped. The
:class:`~pvtt.propagate.controls.Choice` (strategy, reason, IoU, motion) is attached to the result, so the
pipeline stores it on the pair record.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from pydantic import BaseModel

from pvtt.compose import as_mask_array, box_of_mask, silhouette_iou
from pvtt.models import ModelNotAvailable
from pvtt.propagate import AutoSettings, I2VEditSettings, VaceSettings, controls
from pvtt.propagate.controls import Choice
from pvtt.registry import Backend
from pvtt.types import Clip, Tracks

log = logging.getLogger("pvtt")

# family -> (strategy when shapes agree, strategy when they differ)
FAMILIES = {"vace": ("vace-depth", "vace-points"), "svd": ("i2vedit", "svd-points")}
# the fields of the propagate section that warp reads
WARP_FIELDS = ("model", "smooth", "min_points", "max_lost_frames", "ransac_threshold", "min_inlier_ratio",
               "occlusion", "occlusion_threshold", "relight", "orientation")


def track_motion(tracks: Tracks | None, mask0: np.ndarray) -> float | None:
    """How far A moves: the largest (over frames) median displacement of its visible tracked points from
    frame 0, as a fraction of A's first-frame box diagonal; None without points or box."""
    box = box_of_mask(np.asarray(mask0, bool))
    if tracks is None or tracks.num_points == 0 or box is None:
        return None
    both = tracks.visible & tracks.visible[:1]
    moved = np.linalg.norm(tracks.points - tracks.points[:1], axis=-1)
    medians = [float(np.median(moved[t][both[t]])) for t in range(len(moved)) if both[t].any()]
    return max(medians) / max(1.0, float(np.hypot(box.width, box.height))) if medians else None


class AutoPropagator(Backend):
    """Chooses a strategy per pair (see the module docstring) and delegates; cheap to construct and to pickle.

    ``settings`` is the ``propagate.auto`` section; ``vace`` the VACE settings both VACE strategies use;
    ``i2vedit`` / ``svd_points`` the SVD strategies' settings; ``warp`` the keyword settings of warp (or the
    propagate section, whose :data:`WARP_FIELDS` they are).
    """

    name = "auto"

    settings_class = AutoSettings

    def __init__(self, settings: AutoSettings | dict[str, Any] | None = None, *,
                 vace: VaceSettings | dict[str, Any] | None = None, i2vedit: Any = None, svd_points: Any = None,
                 warp: dict[str, Any] | BaseModel | None = None, **overrides: Any):
        from pvtt.propagate import SvdPointsSettings

        super().__init__(settings, **overrides)
        self.vace = vace if isinstance(vace, VaceSettings) else VaceSettings.model_validate(vace or {})
        self.i2vedit = i2vedit if isinstance(i2vedit, I2VEditSettings) else I2VEditSettings.model_validate(i2vedit or {})
        self.svd_points = (svd_points if isinstance(svd_points, SvdPointsSettings)
                           else SvdPointsSettings.model_validate(svd_points or {}))
        if isinstance(warp, BaseModel):
            warp = {k: getattr(warp, k) for k in WARP_FIELDS}
        self.warp = dict(warp or {})
        self._backends: dict[str, Any] = {}
        self._missing: dict[str, str] = {}  # family → why its weights could not be loaded

    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self.settings, "vace": self.vace, "i2vedit": self.i2vedit,
                "svd_points": self.svd_points, "warp": self.warp}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["settings"], vace=state["vace"], i2vedit=state["i2vedit"],
                      svd_points=state["svd_points"], warp=state["warp"])

    # --- families and their backends ------------------------------------------------------------------
    def families(self) -> list[str]:
        """The model families configured (weights named), in ``prefer`` order."""
        s = self.settings
        if not s.models:
            return []
        configured = {"vace": bool(self.vace.model), "svd": s.svd and bool(self.i2vedit.model)}
        order = ["vace", "svd"] if s.prefer == "vace" else ["svd", "vace"]
        return [family for family in order if configured[family]]

    def setup(self, model: Any = None, processor: Any = None) -> None:
        """Load every configured family's weights (or take ``model`` for the first); missing weights are not an
        error here: they are remembered, and that family's strategies are skipped with the reason."""
        for family in self.families():
            try:
                self._load(family, model)
            except ModelNotAvailable as exc:
                self._missing[family] = str(exc)
                log.warning("propagate auto: %s weights not available, its strategies are skipped: %s", family, exc)
            model = None

    def _load(self, family: str, model: Any = None) -> None:
        if family == "vace":
            from pvtt.propagate.vace import VaceDepthPropagator, VacePointsPropagator

            depth = VaceDepthPropagator(self.vace)
            depth.setup(model=model)
            points = VacePointsPropagator(self.vace)
            points.setup(model=depth.model)
            self._backends.update({"vace-depth": depth, "vace-points": points})
        else:
            from pvtt.propagate.i2vedit import I2VEditPropagator
            from pvtt.propagate.videoswap import SvdPointsPropagator

            edit = I2VEditPropagator(self.i2vedit)
            edit.setup(model=model)
            points = SvdPointsPropagator(self.svd_points)
            points.setup(model=edit.model)  # one SVD pipeline for both
            self._backends.update({"i2vedit": edit, "svd-points": points})

    @property
    def resources(self) -> Any:
        """A GPU when a model family is configured, else warp's (one CPU)."""
        if self.families():
            from pvtt.propagate.vace import VaceDepthPropagator

            return VaceDepthPropagator(self.vace).resources
        return super().resources

    # --- the decision -------------------------------------------------------------------------------
    def choose(self, mask_a: np.ndarray, alpha_b: np.ndarray | None, tracks_a: Tracks | None = None) -> Choice:
        """Strategy for one pair from A's first-frame mask, B's alpha (as placed or as photographed) and A's tracks."""
        s = self.settings
        families = self.families()
        if not families:
            why = ("propagate.auto.models is false" if not s.models else
                   "propagate.vace.model is empty" + ("" if not s.svd else " and propagate.i2vedit.model is empty"))
            return Choice("warp", f"no model weights configured ({why})")
        available = [f for f in families if f not in self._missing]
        if not available:
            return Choice("warp", "; ".join(f"{f.upper() if f == 'vace' else 'SVD'} weights missing: "
                                            f"{self._missing[f]}" for f in families))
        if alpha_b is None:
            return Choice("warp", "B's alpha is unknown, so A's and B's shapes cannot be compared")
        motion = track_motion(tracks_a, mask_a)
        if motion is not None and motion < s.static_motion:
            return Choice("warp", f"A barely moves ({motion:.3f} of its box diagonal < {s.static_motion}): "
                                  f"warp carries it and keeps B's pixels", motion=motion)
        iou = silhouette_iou(mask_a, alpha_b, s.silhouette_size)
        family = available[0]
        if iou >= s.iou_threshold:
            strategy = FAMILIES[family][0]
            what = "A's depth is a valid geometry" if family == "vace" else "A's attention is a valid structure"
            return Choice(strategy, f"silhouette IoU {iou:.2f} >= {s.iou_threshold}: shapes agree, {what} for B",
                          iou, motion)
        if tracks_a is None or tracks_a.num_points == 0 or not tracks_a.visible.any():
            return Choice("warp", f"silhouette IoU {iou:.2f} < {s.iou_threshold}: shapes differ, but the clip "
                                  f"has no tracked points for {FAMILIES[family][1]}", iou, motion)
        return Choice(FAMILIES[family][1], f"silhouette IoU {iou:.2f} < {s.iou_threshold}: shapes differ, tracked "
                                           f"points carry A's motion without A's shape", iou, motion)

    def propagate(self, clip: Clip, background: np.ndarray | None, masks_a: Any, tracks_a: Tracks | None,
                  insert: Any, **kwargs: Any) -> Any:
        """Choose, delegate, and attach the choice to the result."""
        masks = as_mask_array(masks_a)
        _, alpha_b, _ = controls.insert_parts(insert)
        if alpha_b is None and kwargs.get("product") is not None:
            alpha_b = np.asarray(getattr(kwargs["product"], "rgba", kwargs["product"]))[..., -1]
        if self.families() and not self._backends and not self._missing:
            self.setup()
        choice = self.choose(masks[0], alpha_b, tracks_a)
        if choice.strategy == "vace-depth" and kwargs.get("depth") is None:  # no depth video: estimate it, or
            try:                                                                 # carry the motion by points
                kwargs["depth"] = self._backends["vace-depth"].clip_depth(clip)
            except ModelNotAvailable as exc:
                has_points = tracks_a is not None and tracks_a.num_points > 0 and tracks_a.visible.any()
                choice = Choice("vace-points" if has_points else "warp",
                                f"{choice.reason}, but the clip has no depth video and none can be estimated "
                                f"({exc})", choice.iou, choice.motion)
        self.last_choice = choice
        log.debug("propagate auto on %s: %s (%s)", clip.id, choice.strategy, choice.reason)
        if choice.strategy == "warp":
            result = self._warp().propagate(clip, background, masks_a, tracks_a, insert)
        else:
            backend = self._backends[choice.strategy]
            if hasattr(backend, "_loaded"):  # the SVD backends share one UNet: its adapter may hold the other's LoRA
                backend._loaded = None
            result = backend.propagate(clip, background, masks_a, tracks_a, insert, **kwargs)
        return _attach(result, choice)

    def _warp(self) -> Any:
        if "warp" not in self._backends:
            from pvtt.propagate.warp import WarpPropagator

            backend = WarpPropagator(**self.warp)
            backend.setup()
            self._backends["warp"] = backend
        return self._backends["warp"]


def _attach(result: Any, choice: Choice) -> Any:
    """Record ``choice`` on ``result``: its strategy/reason fields, else its ``info`` dict."""
    for field, value in (("strategy", choice.strategy), ("reason", choice.reason)):
        if hasattr(result, field):
            setattr(result, field, value)
    extra = {"strategy": choice.strategy, "reason": choice.reason, "auto": choice.as_dict()}
    if isinstance(getattr(result, "info", None), dict):
        result.info.update(extra)
    elif hasattr(result, "info"):
        result.info = extra
    return result
