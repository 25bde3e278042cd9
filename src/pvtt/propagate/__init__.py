"""propagate: carry the edited first frame through the clip, preserving A's motion.

Interface: :class:`Propagator` — ``propagate(clip, background, masks_a, tracks_a, inserted) ->
PropagateResult``. Raises :class:`~pvtt.errors.RejectItem` when A's motion cannot be followed
(e.g. tracks lost for several frames).

Backends (chosen by ``propagate.backend``):

- ``warp``: per-frame frame-0 → frame-t transform from A's visible semantic points (similarity or
  homography, RANSAC, temporally smoothed); B warped and composited over the erased background with
  the first frame's harmonisation and shadow; B occluded where A was occluded. CPU.
- ``motion-lora``: I2VEdit's coarse stage alone: the clip's motion LoRA + image-to-video from noise (GPU;
  settings ``motion_lora``).
- ``i2vedit``: I2VEdit coarse + fine: the motion LoRA, EDM inversion of the source with smooth-area random
  perturbation, adaptive spatial attention matching, the temporal attention selector and skip-interval
  attention across chunks (GPU; settings ``i2vedit``).
- ``svd-points``: VideoSwap's semantic point registration on SVD: DIFT-style UNet features at A's tracked
  points, a per-clip MLP registering them into the UNet's down blocks, A's points matched onto B by feature
  and moved with A's motion, image-to-video from the edited first frame (GPU; settings ``svd_points``).
- ``vace-depth`` / ``vace-points``: VACE conditioned on depth / rendered points (GPU; settings ``vace``).
- ``auto``: per pair from A/B shape similarity (settings ``auto``; it uses the ``vace`` settings and this
  section's warp settings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import Field

from pvtt.models import ModelSettings
from pvtt.registry import Backend, Entry, Registry
from pvtt.settings import Settings
from pvtt.types import Clip, InsertResult, Masks, Tracks

BACKENDS = Registry("propagate", {
    "warp": "pvtt.propagate.warp:WarpPropagator",
    "motion-lora": Entry("pvtt.propagate.motion_lora:MotionLoraPropagator", "motion_lora"),
    "i2vedit": Entry("pvtt.propagate.i2vedit:I2VEditPropagator", "i2vedit"),
    "vace-depth": Entry("pvtt.propagate.vace:VaceDepthPropagator", "vace"),
    "vace-points": Entry("pvtt.propagate.vace:VacePointsPropagator", "vace"),
    "svd-points": Entry("pvtt.propagate.videoswap:SvdPointsPropagator", "svd_points"),
    # auto delegates to the strategies above, with their sections, and to warp, with this section's fields
    "auto": Entry("pvtt.propagate.auto:AutoPropagator", "auto",
                  context={"vace": "vace", "i2vedit": "i2vedit", "svd_points": "svd_points", "warp": ""}),
})

WAN_NEGATIVE = ("bright colors, overexposed, static, blurred details, subtitles, worst quality, low quality, "
                "JPEG artifacts, ugly, deformed, disfigured, extra fingers, poorly drawn, messy background")


class VaceSettings(ModelSettings):
    model: str = "Wan-AI/Wan2.1-VACE-1.3B-diffusers"
    """Wan VACE diffusers pipeline: a local folder or a cached hub id."""
    prompt: str = "{instruction}"
    """Prompt template; {instruction} is the pair's instruction."""
    negative_prompt: str = WAN_NEGATIVE
    """Negative prompt of classifier-free guidance."""
    steps: int = Field(50, ge=1)
    """Denoising steps."""
    guidance_scale: float = Field(5.0, ge=0)
    """Classifier-free guidance scale (<= 1: no guidance)."""
    conditioning_scale: float = Field(1.0, ge=0)
    """Strength of the VACE control (all VACE layers)."""
    max_area: int = Field(480 * 832, ge=256)
    """Model resolution: about this many pixels, aspect kept."""
    max_frames: int = Field(81, ge=5)
    """Frames per generated chunk (4k+1); longer clips are chunked."""
    max_sequence_length: int = Field(512, ge=1)
    """T5 prompt tokens."""
    mask_dilate: int = Field(8, ge=0)
    """Pixels the product region (A's mask and B's box) is grown by."""
    feather: int = Field(4, ge=0)
    """Pixels of soft blending when the source is pasted back outside the region."""
    keep_source: bool = True
    """Paste the source pixels back outside the region after decoding."""
    use_reference: bool = True
    """Give B's photo (on white) to VACE as a reference image."""
    point_radius: int = Field(4, ge=1)
    """vace-points: disc radius of a rendered point, in clip pixels."""
    depth_model: str = "depth-anything/Depth-Anything-V2-Large-hf"
    """vace-depth: depth weights used when the clip's depth video is not given."""
    batch_cfg: bool = True
    """Run the conditional and unconditional branches as one batch of two."""
    uncond_every: int = Field(1, ge=1)
    """Refresh the unconditional branch every N steps and reuse the guidance difference in between (1 = exact CFG)."""
    attention_backend: str | None = None
    """diffusers attention backend of the transformer, e.g. '_native_cudnn', 'flash' (null: the default SDPA)."""
    compile: bool = False
    """torch.compile the transformer's repeated blocks (regional compilation; the first call pays ~30 s of compile on
    an H200)."""
    seed: int = 0
    """Seed of the initial noise."""


class MotionLoraSettings(ModelSettings):
    model: str = "stabilityai/stable-video-diffusion-img2vid-xt"
    """Stable Video Diffusion pipeline: a local folder or a cached hub id."""
    rank: int = Field(32, ge=1)
    """LoRA rank (I2VEdit: 32)."""
    alpha: float | None = Field(None, gt=0)
    """LoRA alpha (null: equal to rank, scale 1)."""
    train_steps: int = Field(250, ge=1)
    """Optimizer steps per clip (I2VEdit: 250)."""
    lr: float = Field(5e-4, gt=0)
    """AdamW learning rate (I2VEdit: 5e-4)."""
    train_frames: int = Field(14, ge=2)
    """Frames per training window (I2VEdit: 14)."""
    lora_scope: Literal["clip", "chunk"] = "clip"
    """'clip': one motion LoRA per clip, trained on windows over the whole clip and used for every generated chunk;
    'chunk': one LoRA per generated chunk, trained only on that chunk's source frames (I2VEdit's reference code).
    Clip by default: a 250-step LoRA took 82.7 s on an H200 (BENCHMARKS.md, 'Motion LoRA on SVD'), so per-chunk
    LoRAs cost 7 x 83 s ~ 9.7 min for a 101-frame clip in 16-frame chunks, against a 90 s per clip target."""
    height: int = Field(576, ge=16)
    """Model height in pixels (a multiple of 64 for SVD)."""
    width: int = Field(1024, ge=16)
    """Model width in pixels (a multiple of 64 for SVD)."""
    p_mean: float = 0.7
    """EDM training noise: mean of log sigma."""
    p_std: float = Field(1.6, gt=0)
    """EDM training noise: std of log sigma."""
    gradient_checkpointing: bool = False
    """Recompute activations in backward (less memory, slower)."""
    sdpa_backend: Literal["auto", "flash", "cudnn", "efficient", "math"] = "auto"
    """PyTorch SDPA kernel for the UNet's attention in training ('auto': PyTorch's choice)."""
    compile: bool = False
    """torch.compile the UNet for training and generation (the first training step pays ~3.5 min of compile on an
    H200, repaid from about the ninth clip of a worker)."""
    num_frames: int = Field(14, ge=2)
    """Frames per generated chunk."""
    inference_steps: int = Field(25, ge=1)
    """Denoising steps of generation."""
    min_guidance_scale: float = Field(1.0, ge=0)
    """SVD guidance at the first frame."""
    max_guidance_scale: float = Field(3.0, ge=0)
    """SVD guidance at the last frame."""
    fps: int = Field(7, ge=1)
    """SVD fps conditioning."""
    motion_bucket_id: int = Field(127, ge=0)
    """SVD motion conditioning."""
    noise_aug_strength: float = Field(0.02, ge=0)
    """Noise added to the conditioning frame."""
    decode_chunk_size: int = Field(8, ge=1)
    """Frames per VAE decode."""
    keep_source: bool = True
    """Paste the source clip back outside the product region (A's mask and B's box moving with it) after generation:
    SVD regenerates the whole frame, the template's background should stay the template's."""
    mask_dilate: int = Field(8, ge=0)
    """Pixels the product region is grown by (keep_source)."""
    feather: int = Field(4, ge=0)
    """Pixels of soft blending at the region's edge (keep_source)."""
    seed: int = 0
    """Seed of training noise, window choice and generation."""


class I2VEditSettings(MotionLoraSettings):
    """I2VEdit's coarse (motion LoRA, the inherited fields) and fine stage (appearance refinement)."""

    num_frames: int = Field(16, ge=2)
    """Frames per chunk (I2VEdit's chunk_size: 16); chunks overlap by `overlap` frames."""
    overlap: int = Field(1, ge=1)
    """Frames a chunk shares with the previous one; the previous chunk's edited last frame conditions the next
    (I2VEdit: 1)."""
    max_guidance_scale: float = Field(2.0, ge=0)
    """SVD guidance at the last frame (I2VEdit's edit: 2.0)."""
    inversion: bool = True
    """EDM inversion (inference_steps Euler steps, no guidance, no LoRA): the edit starts from the source chunk's
    inverted latents under attention control (false: from noise, the coarse stage alone)."""
    sarp: bool = True
    """Smooth-area random perturbation before inversion: pixels whose Sobel gradient |Gx|+|Gy| (mean over RGB, [-1, 1]
    range) is at most sarp_threshold get Gaussian noise (inversion only)."""
    sarp_threshold: float = Field(0.001, ge=0)
    """SARP: gradient at or below which a pixel is smooth."""
    sarp_noise: float = Field(0.005, ge=0)
    """SARP: sigma of the noise added to smooth pixels ([-1, 1])."""
    attention_matching: Literal["adaptive", "copy", "off"] = "adaptive"
    """Spatial self-attention of the edit's conditional branch: 'adaptive' — I2VEdit's adaptive preservation,
    attention = ((1-M) A_src + M A_edit) V with M = 1 where D = ½ Σ|A_src − A_edit| ≥ mask_threshold, else D;
    'copy' — the source's attention everywhere (M = 0); 'off' — the edit's own attention."""
    difference_kernel: Literal["auto", "triton", "torch"] = "auto"
    """How adaptive preservation computes D: 'triton' — one fused kernel in two passes over the keys that never writes
    the attention matrices; 'torch' — float32 probabilities in blocks of query rows (compiled on CUDA); 'auto' —
    triton on CUDA when importable."""
    mask_threshold: float = Field(0.35, ge=0, le=1)
    """Adaptive preservation: attention difference D at or above which a token takes the edit's attention (I2VEdit:
    0.35)."""
    temporal_steps: tuple[float, float] = (0.5, 0.8)
    """Temporal attention selector: before the first fraction of the steps every temporal self-attention layer takes
    the source's attention maps, until the second only the temporal_layers, after it none (I2VEdit: 0.5, 0.8 —
    steps 0-11, 12-19 of 25)."""
    temporal_layers: list[str] = ["down.4", "down.5", "mid.0", "up.0", "up.1"]
    """Temporal self-attention layers ('down.i', 'mid.i', 'up.i': the i-th in that part of the UNet) that keep the
    source's maps in the selector's second phase: the lowest-resolution ones."""
    skip_interval: bool = True
    """Long clips: every later chunk's temporal self-attention also attends to the first chunk's keys/values (same
    layer, same step)."""
    skip_interval_frames: int | None = Field(4, ge=1)
    """Skip-interval: how many of the first chunk's frames (evenly spaced, its first included) later chunks attend to;
    null: all of them, as the reference. Every frame kept costs ~2.6 GB per step (inversion + guided edit,
    576x1024) for the whole clip: all 16 frames would be ~125 GB, more than an H200 plus its host memory."""
    store_gib: float | Literal["auto"] = "auto"
    """GPU memory (GiB) the stored source attention may hold; the rest waits in pinned host memory (~45 s more per
    101-frame pair at 48). 'auto': the GPU memory free once the pipeline is loaded, less 24 GiB for the denoiser's
    own work (on an H200 all of a pair's ~74 GiB stays on the GPU; on an 80 GB card about 50)."""


class SvdPointsSettings(MotionLoraSettings):
    """``svd-points``: VideoSwap's semantic point registration on SVD (the inherited fields: the SVD pipeline, model
    size, EDM training noise, generation; rank/alpha/lora_scope only matter with ``motion_lora``)."""

    train_steps: int = Field(100, ge=1)
    """Optimizer steps of the point registration MLP per clip (VideoSwap: 100 for objects/animals, 50 for humans)."""
    lr: float = Field(5e-4, gt=0)
    """AdamW learning rate of the registration MLP (VideoSwap: 5e-4, weight decay 0.01)."""
    mlp_width: int = Field(128, ge=1)
    """Hidden width of the registration MLP, one MLP per injected block (VideoSwap's mid_dim: 128)."""
    blocks: list[int] = [0, 1, 2, 3]
    """UNet down blocks whose output gets the point features, added after the block's last layer, before its
    downsampler (VideoSwap's T2I-Adapter residuals: all four down blocks, strides 8-64 px)."""
    feature_block: int = Field(1, ge=0)
    """UNet up block whose output is the point feature map (DIFT: up_ft_index 1, 1/16 of the image, 1280 channels on
    SVD)."""
    feature_sigma: float = Field(0.72, gt=0)
    """EDM noise sigma of the one forward pass that extracts the features (DIFT's t=261 of SD's 1000 steps is sigma
    0.72)."""
    feature_ensemble: int = Field(1, ge=1)
    """Noise draws averaged per feature map (DIFT: 8)."""
    point_dropout: float = Field(0.2, ge=0, lt=1)
    """Training: probability that a point is left out of a step (VideoSwap's drop_rate: 0.2)."""
    min_train_sigma: float = Field(1.6, ge=0)
    """Training noise: the log-normal (p_mean, p_std) truncated below this sigma, so the MLP learns where layout is
    decided (VideoSwap trains on t >= 500 of SD's schedule: sigma >= 1.6; 0: no truncation)."""
    loss_region: Literal["global", "points"] = "global"
    """Training loss: 'global' — EDM loss over the whole frame; 'points' — only on patches of patch_radius latent
    cells around the visible points (VideoSwap's loss_type global / local)."""
    patch_radius: int = Field(2, ge=1)
    """Half side, in latent cells, of a point's loss patch (loss_region: points; VideoSwap: 2)."""
    point_scale: float = Field(0.5, ge=0)
    """Generation: factor on the injected point features (VideoSwap's t2i_guidance_scale, mostly 0.5)."""
    point_steps: float = Field(0.5, ge=0, le=1)
    """Generation: fraction of the denoising steps, from the first, that get the point features (VideoSwap's t2i_end:
    0.5)."""
    min_similarity: float = Field(0.35, ge=-1, le=1)
    """A's point k is carried to B only when the best cosine similarity of its frame-0 feature inside B's box reaches
    this (VideoSwap filters DIFT matches below 0.35)."""
    match_step: int = Field(4, ge=1)
    """Pixels (at model size) between the candidate locations in B's box that A's points are matched against."""
    motion_lora: bool = False
    """Also train the clip's motion LoRA (motion-lora's training, with the inherited LoRA fields) when propagate is
    not given one; the MLP is then trained and used on top of it."""


class AutoSettings(Settings):
    iou_threshold: float = Field(0.75, ge=0, le=1)
    """Silhouette IoU at or above which A's and B's shapes agree: A's geometry (vace-depth) or A's attention (i2vedit)
    is valid for B; below it only A's motion is carried, by points (vace-points / svd-points)."""
    silhouette_size: int = Field(64, ge=8)
    """Side of the square the silhouettes are normalized to."""
    models: bool = True
    """Use the model strategies at all (false: always warp)."""
    svd: bool = False
    """Also consider the SVD strategies (i2vedit when shapes agree, svd-points when they differ; settings
    propagate.i2vedit / svd_points). The clip's motion LoRA is then trained once per clip with i2vedit's settings."""
    prefer: Literal["vace", "svd"] = "vace"
    """Which model family is tried first when both have weights; the other is the fallback."""
    static_motion: float = Field(0.01, ge=0)
    """A product whose tracked points move less than this fraction of A's box diagonal from frame 0 (largest median
    displacement) is carried by warp: nothing for a generative model to follow, and warp keeps B's pixels."""


class PropagateSettings(Settings, backends=BACKENDS):
    backend: str = "warp"
    """Propagation strategy. One of: warp, motion-lora, i2vedit, vace-depth, vace-points, svd-points, auto."""
    model: Literal["similarity", "affine", "homography"] = "affine"
    """warp: transform fitted to the tracked points per frame (affine needs 3 points, homography 4; with fewer a frame
    falls back to similarity). Affine by default: a product lying on a table filmed by an orbiting camera moves by
    a plane homography, which a similarity misses by 10-30 px on the bracelet case (its points then disagree and
    the pair is rejected); a full homography is less stable on few noisy points."""
    orientation: Literal["follow", "upright", "auto"] = "follow"
    """warp: 'follow' — B takes A's fitted motion as is (flat or hand-held products); 'upright' — B keeps its
    orientation, scaled by A's motion and anchored on it (a standing product in an orbit shot: no shear or roll
    from the table plane); 'auto' — upright when the insert anchored B bottom-centre."""
    smooth: float = Field(1.5, ge=0)
    """warp: temporal Gaussian sigma (frames) applied to the transformed box corners (0 = no smoothing)."""
    min_points: int = Field(3, ge=2)
    """warp: visible points needed to fit a frame's transform."""
    max_lost_frames: int = Field(3, ge=0)
    """warp: consecutive frames with fewer than min_points visible points that are bridged (held / interpolated); more
    → rejected."""
    ransac_threshold: float = Field(0.02, gt=0)
    """warp: RANSAC inlier threshold, fraction of A's box diagonal."""
    min_inlier_ratio: float = Field(0.5, ge=0, le=1)
    """warp: a frame whose transform is backed by fewer than this fraction of its visible points (RANSAC inliers)
    counts as lost: the points disagree."""
    occlusion: bool = True
    """warp: show the clip's pixels where A was occluded (inside A's expected footprint but not in its mask)."""
    occlusion_threshold: float = Field(25.0, ge=0)
    """warp: a pixel of A's expected footprint missing from A's mask counts as occluded only if the clip there differs
    from A's frame-0 look carried by the transform by more than this (mean abs RGB after a light blur); a pixel
    that still looks like A is an under-segmented mask, not an occluder."""
    occlusion_colour: float = Field(0.05, ge=0, lt=1)
    """warp: an occluder must also be unlike A's colours: a pixel counts as occluded only where its colour is rarer in A
    (a smoothed Lab histogram of A's frame-0 pixels) than A's rarest colours that make up this share of A. A's own
    pixels that its mask missed — A turned, lifted, deformed, so unlike its frame-0 look — are then not drawn over B
    as fragments of A, while a hand, of colours A lacks, still is (0 = no colour test)."""
    occlusion_depth: float = Field(0.06, ge=0, lt=1)
    """warp: an occluder must reach this far into A's expected footprint (fraction of A's box diagonal); a piece that
    stays within this band along the footprint's edge is the warp missing A's outline by a few pixels (the table
    beside A, outside A's mask), not a hand in front of A, and B is drawn over it (`pvtt demo`'s bottle: a 12-px strip
    of table shown over B in the last frame; 0 = off)."""
    relight: bool = True
    """warp: follow the clip's brightness changes (gain of the background around B relative to frame 0)."""
    motion_lora: MotionLoraSettings = Field(default_factory=MotionLoraSettings)
    """Settings of motion-lora."""
    i2vedit: I2VEditSettings = Field(default_factory=I2VEditSettings)
    """Settings of i2vedit."""
    svd_points: SvdPointsSettings = Field(default_factory=SvdPointsSettings)
    """Settings of svd-points."""
    vace: VaceSettings = Field(default_factory=VaceSettings)
    """Settings of vace-depth and vace-points (auto's VACE too)."""
    auto: AutoSettings = Field(default_factory=AutoSettings)
    """Settings of auto's choice."""


@dataclass
class PropagateResult:
    frames: np.ndarray  # (T, H, W, 3) uint8, the edited clip
    masks: np.ndarray | None = None  # (T, H, W) bool, B's visible region per frame
    transforms: np.ndarray | None = None  # (T, 3, 3) frame-0 → frame-t transforms used (warp)
    info: dict = field(default_factory=dict)  # {"strategy": ..., "reason": ...} and backend details
    strategy: str = ""
    reason: str = ""

    def __post_init__(self) -> None:
        if self.info is None:
            self.info = {}
        if self.strategy and "strategy" not in self.info:
            self.info["strategy"] = self.strategy
        if self.reason and "reason" not in self.info:
            self.info["reason"] = self.reason
        self.strategy = self.strategy or str(self.info.get("strategy", ""))
        self.reason = self.reason or str(self.info.get("reason", ""))


class Propagator(Backend):
    """Interface of propagation backends: cheap to construct, picklable."""

    stage = "propagate"

    settings_class = PropagateSettings

    def propagate(self, clip: Clip, background: np.ndarray, masks_a: Masks, tracks_a: Tracks,
                  inserted: InsertResult, *, instruction: str = "", product: np.ndarray | None = None,
                  depth: np.ndarray | None = None, lora: Any = None) -> PropagateResult:
        """The edited clip. The keyword arguments are the pair's context, for the backends that use it:
        ``instruction`` (prompt), ``product`` B's cut-out RGBA (reference image), ``depth`` the clip's depth
        video ``(T, H, W[, 3])`` (``vace-depth``), ``lora`` the clip's motion LoRA (``motion-lora``)."""
        raise NotImplementedError


def make_propagator(settings: PropagateSettings | None = None, **overrides: Any) -> Any:
    return BACKENDS.make(settings or PropagateSettings(), **overrides)


def lora_settings(settings: PropagateSettings) -> MotionLoraSettings | None:
    """The settings the clip's motion LoRA is trained with, when the strategy needs one (else None)."""
    if settings.backend == "auto":
        return settings.i2vedit if settings.auto.models and settings.auto.svd and settings.i2vedit.model else None
    return BACKENDS.settings_of(settings) if settings.backend in ("motion-lora", "i2vedit") else None


def clip_artifacts(settings: PropagateSettings) -> dict[str, str]:
    """The clip artifacts the configured strategy uses, in the order they are built: clip stage name →
    ``"required"`` (a clip without it gets no pairs) or ``"optional"`` (used when there; missing weights only
    warn). The pipeline runs these stages; this is the one place that knows which strategy needs what."""
    needs = {}
    depth = depth_need(settings)
    if depth:
        needs["depth"] = depth
    if lora_settings(settings) is not None:
        needs["motion_lora"] = "required"
    if settings.backend == "svd-points":
        needs["points_registration"] = "required"
    return needs


def depth_need(settings: PropagateSettings) -> str | None:
    """Whether the strategy needs the clip's depth video: ``"required"`` (``vace-depth``), ``"optional"``
    (``auto`` with its model strategies on: without depth it chooses ``vace-points`` or ``warp``) or None."""
    if settings.backend == "vace-depth":
        return "required"
    if settings.backend == "auto":
        return "optional" if settings.auto.models and settings.vace.model else None
    return None


__all__ = ["BACKENDS", "PropagateResult", "I2VEditSettings", "PropagateSettings", "Propagator", "SvdPointsSettings",
           "depth_need", "lora_settings", "make_propagator"]
