"""Per-product stage: the target photo cut out to a clean RGBA (cached per product, shared by its pairs)."""

from __future__ import annotations

from typing import Any

from pvtt.clips import ProductItem
from pvtt.config import settings_key
from pvtt.errors import RejectItem
from pvtt.media.image import load_image_rgba, write_png
from pvtt.stage import Stage
from pvtt.store import Workspace, atomic_path


class CutoutStage(Stage[ProductItem]):
    name = "cutout"
    version = "2"

    def __init__(self, workspace: Workspace, settings: Any, retry_failed: bool = True):
        from pvtt.cutout import make_cutter

        super().__init__(workspace, retry_failed)
        self.settings = settings
        self._cutter = make_cutter(settings)

    def backends(self):
        return (self._cutter,)

    def key(self, product: ProductItem) -> str:
        return settings_key(self.name, self.version, product.key, self.settings)

    def run(self, product: ProductItem, key: str):
        result = self._cutter.cut_out(product.load(self.workspace))
        if result.low_confidence and self.settings.reject_low_confidence:
            raise RejectItem(f"low-confidence cutout ({result.confidence:.2f}): {result.notes or 'busy background'}",
                             metrics={"confidence": round(float(result.confidence), 4)})
        path = self.workspace.artifact_dir(self.name, product.id, key) / "cutout.png"
        with atomic_path(path) as tmp:
            write_png(tmp, result.rgba)
        outputs = {"cutout_path": self.workspace.rel(path), "width": int(result.rgba.shape[1]),
                   "height": int(result.rgba.shape[0])}
        metrics = {"confidence": round(float(result.confidence), 4), "low_confidence": bool(result.low_confidence)}
        if result.notes:
            metrics["notes"] = result.notes
        return outputs, metrics


def load_cutout(ws: Workspace, product_id: str):
    from pvtt.stages.clip import upstream

    return load_image_rgba(ws.abs(upstream(ws, "cutout", product_id).outputs["cutout_path"]))
