"""Per product: decode the catalog photo (any format) and store it as an RGBA PNG in the workspace."""

from __future__ import annotations

from pvtt.config import MediaSettings, settings_key
from pvtt.media.image import load_image_rgba, write_png
from pvtt.stage import Stage
from pvtt.store import Workspace, atomic_path, file_fingerprint
from pvtt.types import Product


class ProductStage(Stage[Product]):
    name = "product"
    version = "1"

    def __init__(self, workspace: Workspace, media: MediaSettings, retry_failed: bool = True):
        super().__init__(workspace, retry_failed)
        self.media = media

    def key(self, product: Product) -> str:
        return settings_key("product", self.version, file_fingerprint(product.image), self.media.max_image_pixels)

    def run(self, product: Product, key: str) -> tuple[dict, dict]:
        rgba = load_image_rgba(product.image, max_pixels=self.media.max_image_pixels)
        final = self.workspace.artifact_dir("products", product.id, key) / "image.png"
        with atomic_path(final) as tmp:
            write_png(tmp, rgba)
        alpha = rgba[..., 3]
        outputs = {"image_path": self.workspace.rel(final), "width": int(rgba.shape[1]), "height": int(rgba.shape[0])}
        return outputs, {"has_alpha": bool((alpha < 255).any())}
