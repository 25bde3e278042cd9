"""propagate ``auto``: per pair, the strategy that fits A's and B's shapes and the weights at hand.

- ``vace-depth`` when A's and B's silhouettes agree (IoU of the normalized alphas ≥ ``iou_threshold``):
  A's depth is a faithful geometry for B.
- ``vace-points`` when they differ: only A's motion (tracked points) is carried, B's shape is free.
- ``warp`` when no model weights are configured (``models: false`` or an empty ``vace.model``) or the
  chosen model's weights are missing (its :class:`~pvtt.models.ModelNotAvailable` message is kept).

The :class:`~pvtt.propagate.controls.Choice` (strategy, reason, IoU) is returned with the result
(``result.strategy``/``result.reason`` or ``result.info``) and by :meth:`AutoPropagator.choose`, so
the pipeline can store it on the pair record.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from pvtt.compose import as_mask_array, silhouette_iou
from pvtt.models import ModelNotAvailable
from pvtt.propagate import BACKENDS, AutoSettings, VaceSettings, controls
from pvtt.propagate.controls import Choice
from pvtt.propagate.vace import VaceDepthPropagator, VacePointsPropagator
from pvtt.registry import Backend, load_backend
from pvtt.types import Clip, Tracks

log = logging.getLogger("pvtt")


class AutoPropagator(Backend):
    """Chooses vace-depth / vace-points / warp per pair and delegates; cheap to construct and to pickle.

    ``settings`` is the ``propagate.auto`` section, ``vace`` the VACE settings both VACE strategies use,
    ``warp`` the keyword settings of the warp backend.
    """

    name = "auto"

    settings_class = AutoSettings

    def __init__(self, settings: AutoSettings | dict[str, Any] | None = None, *,
                 vace: VaceSettings | dict[str, Any] | None = None, warp: dict[str, Any] | None = None,
                 **overrides: Any):
        super().__init__(settings, **overrides)
        self.vace = vace if isinstance(vace, VaceSettings) else VaceSettings.model_validate(vace or {})
        self.warp = dict(warp or {})
        self._backends: dict[str, Any] = {}
        self._missing: dict[str, str] = {}  # strategy → why its weights could not be loaded

    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self.settings, "vace": self.vace, "warp": self.warp}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["settings"], vace=state["vace"], warp=state["warp"])

    def setup(self, model: Any = None, processor: Any = None) -> None:
        """Load the VACE pipeline once for both VACE strategies (or take ``model``), when models are on.

        Missing weights are not an error here: they are remembered, and pairs go to ``warp`` with the reason.
        """
        if not self._models_configured():
            return
        depth = VaceDepthPropagator(self.vace)
        try:
            depth.setup(model=model)
        except ModelNotAvailable as exc:
            self._missing["vace"] = str(exc)
            log.warning("propagate auto: VACE weights not available, pairs fall back to warp: %s", exc)
            return
        points = VacePointsPropagator(self.vace)
        points.setup(model=depth.model)
        self._backends.update({"vace-depth": depth, "vace-points": points})

    @property
    def resources(self) -> Any:
        """VACE's (a GPU) when the model strategies are on, else warp's (one CPU)."""
        if self._models_configured():
            return VaceDepthPropagator(self.vace).resources
        return super().resources

    def _models_configured(self) -> bool:
        return self.settings.models and bool(self.vace.model)

    # --- the decision -------------------------------------------------------------------------------
    def choose(self, mask_a: np.ndarray, alpha_b: np.ndarray | None, tracks_a: Tracks | None = None) -> Choice:
        """Strategy for one pair from A's first-frame mask and B's alpha (as placed or as photographed)."""
        s = self.settings
        if not self._models_configured():
            why = "propagate.auto.models is false" if not s.models else "propagate.vace.model is empty"
            return Choice("warp", f"no model weights configured ({why})")
        if "vace" in self._missing:
            return Choice("warp", f"VACE weights missing: {self._missing['vace']}")
        if alpha_b is None:
            return Choice("warp", "B's alpha is unknown, so A's and B's shapes cannot be compared")
        iou = silhouette_iou(mask_a, alpha_b, s.silhouette_size)
        if iou >= s.iou_threshold:
            return Choice("vace-depth", f"silhouette IoU {iou:.2f} >= {s.iou_threshold}: shapes agree, "
                                        f"A's depth is a valid geometry for B", iou)
        if tracks_a is None or tracks_a.num_points == 0 or not tracks_a.visible.any():
            return Choice("warp", f"silhouette IoU {iou:.2f} < {s.iou_threshold}: shapes differ, but the clip "
                                  f"has no tracked points for vace-points", iou)
        return Choice("vace-points", f"silhouette IoU {iou:.2f} < {s.iou_threshold}: shapes differ, tracked points "
                                     f"carry A's motion without A's shape", iou)

    def propagate(self, clip: Clip, background: np.ndarray | None, masks_a: Any, tracks_a: Tracks | None,
                  insert: Any, **kwargs: Any) -> Any:
        """Choose, delegate, and attach the choice to the result."""
        masks = as_mask_array(masks_a)
        _, alpha_b, _ = controls.insert_parts(insert)
        if alpha_b is None and kwargs.get("product") is not None:
            alpha_b = np.asarray(getattr(kwargs["product"], "rgba", kwargs["product"]))[..., -1]
        if self._models_configured() and not self._backends and "vace" not in self._missing:
            self.setup()
        choice = self.choose(masks[0], alpha_b, tracks_a)
        if choice.strategy == "vace-depth" and kwargs.get("depth") is None:  # no depth video: estimate it, or
            try:                                                                 # carry the motion by points
                kwargs["depth"] = self._backends["vace-depth"].clip_depth(clip)
            except ModelNotAvailable as exc:
                has_points = tracks_a is not None and tracks_a.num_points > 0 and tracks_a.visible.any()
                choice = Choice("vace-points" if has_points else "warp",
                                f"{choice.reason}, but the clip has no depth video and none can be estimated "
                                f"({exc})", choice.iou)
        self.last_choice = choice
        log.debug("propagate auto on %s: %s (%s)", clip.id, choice.strategy, choice.reason)
        if choice.strategy == "warp":
            result = self._warp().propagate(clip, background, masks_a, tracks_a, insert)
        else:
            result = self._backends[choice.strategy].propagate(clip, background, masks_a, tracks_a, insert, **kwargs)
        return _attach(result, choice)

    def _warp(self) -> Any:
        if "warp" not in self._backends:
            backend = load_backend("propagate", BACKENDS, "warp", **self.warp)
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
