"""The validated configuration of a run.

One pydantic model per stage; :class:`PipelineConfig` composes them. Precedence: ``--set`` on the
command line, then the YAML file, then a packaged preset (``--preset gpu``: ``pvtt/data/presets/``),
then the defaults here. Unknown keys and invalid values are errors that name the key
(``normalize.fsp: unknown key``).

Each stage's output is cached under a key hashed from its inputs and :func:`settings_key` of the
settings that affect it, so changing ``normalize.fps`` redoes normalization and everything after
it but not shot detection.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from pvtt.curate import CurateSettings
from pvtt.cutout import CutoutSettings
from pvtt.depth import DepthSettings
from pvtt.embed import EmbedSettings
from pvtt.erase import EraseSettings
from pvtt.errors import ConfigError
from pvtt.hands import HandSettings
from pvtt.insert import InsertSettings
from pvtt.judge import JudgeSettings
from pvtt.locate import LocateSettings
from pvtt.pairing import PairingSettings
from pvtt.propagate import PropagateSettings
from pvtt.runners.ray import RaySettings
from pvtt.segment import SegmentSettings
from pvtt.settings import Settings
from pvtt.track import TrackSettings
from pvtt.vlm import VlmSettings


class MediaSettings(Settings):
    max_pixels: int = Field(4096 * 4096, gt=0)
    """Reject videos with more pixels per frame than this."""
    max_image_pixels: int = Field(8192 * 8192, gt=0)
    """Reject product photos with more pixels than this."""
    crf: int = Field(18, ge=0, le=51)
    """x264 constant rate factor of every written video (lower is better)."""
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower"] = "veryfast"
    """x264 preset: speed against file size at the same quality."""


class ShotSettings(Settings):
    detector: Literal["content", "adaptive"] = "adaptive"
    """PySceneDetect detector: 'adaptive' tolerates camera motion better; 'content' is a fixed threshold."""
    threshold: float = Field(27.0, gt=0)
    """ContentDetector threshold (detector='content')."""
    adaptive_threshold: float = Field(3.0, gt=0)
    """AdaptiveDetector ratio threshold (detector='adaptive')."""
    min_content_val: float = Field(15.0, ge=0)
    """AdaptiveDetector minimum content change for a cut."""
    min_gap: float = Field(0.5, ge=0)
    """Seconds that must pass after a cut before another can be detected."""
    min_duration: float = Field(1.0, ge=0)
    """Drop shots shorter than this many seconds."""
    detect_width: int = Field(256, ge=32)
    """Frames are downscaled to this width for detection."""


class NormalizeSettings(Settings):
    fps: float = Field(20.0, gt=0, le=240)
    """Output frame rate (frames are resampled by timestamp)."""
    short_side: int = Field(720, ge=16)
    """Output short side in pixels before rounding to `multiple`."""
    multiple: int = Field(16, ge=2)
    """Both output sides are rounded to a multiple of this."""
    allow_upscale: bool = True
    """Upscale videos whose short side is below `short_side`."""
    max_frames: int = Field(101, ge=1)
    """Frames per window (clip)."""
    min_frames: int = Field(16, ge=1)
    """Drop windows with fewer frames than this."""
    windows: Literal["first", "all"] = "first"
    """Keep the first window of each shot, or all."""
    skip_flat_start: bool = True
    """Drop the flat frames a shot starts with (a fade-in from black or white), so clips start on content that locate
    and segment can see."""
    flat_threshold: float = Field(12.0, ge=0)
    """A frame is flat when the standard deviation of its luma (0-255) is below this and (nearly) all of its thumbnail
    is plain (`pvtt.leadin.FLAT_PLAIN`): a small product on a white studio backdrop can be as low (`pvtt bench` windows
    of ART001's studio with a bracelet: 6-10), but its edges are not plain."""
    skip_fade_in: bool = True
    """Also drop the rest of a fade-in from black: leading frames whose mean luma is below `fade_ratio` times the
    brightest of the next `lead_window` seconds (and at least 8 levels below). Unlike the flat test this sees
    through a caption or logo that stays on screen during the fade."""
    fade_ratio: float = Field(0.75, gt=0, le=1)
    """A leading frame is still fading in below this fraction of the brightness to come."""
    skip_title_cards: bool = True
    """Drop the title card a shot starts with: a run of still, mostly plain frames (text or a logo over a flat or
    gradient background) that other content replaces within `lead_window` seconds. A shot (or a whole window) of
    still plain frames is dropped too, with the reason in the normalize record: a card on its own, or a product on
    a plain backdrop where nothing moves (which curate would reject as too static)."""
    card_plain: float = Field(0.6, ge=0, le=1)
    """A title card is at least this fraction plain: 4x4 blocks of a 256 px luma thumbnail that are flat or a smooth
    gradient (|Laplacian| <= 3)."""
    card_change: float = Field(0.01, ge=0, le=1)
    """A title card is still: fewer than this fraction of its pixels differ by more than 4 luma levels from its first
    frame."""
    card_replaced: float = Field(0.5, ge=0, le=1)
    """A title card is replaced: at least this fraction of its pixels differ `lead_window` seconds after it (a hand
    entering a still studio shot changes far less, so that shot is kept)."""
    lead_window: float = Field(1.0, gt=0)
    """Seconds of look-ahead for the fade-in and title-card tests (frames are held that long)."""

    @field_validator("multiple")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError(f"must be even (yuv420p needs even sides), got {value}")
        return value


class RunnerSettings(Settings):
    kind: Literal["local", "ray"] = "local"
    """Where per-item work runs: this machine (local) or a Ray cluster (ray, needs pvtt[ray])."""
    workers: int = Field(1, ge=1)
    """Processes for per-item work (1 = in-process)."""
    progress: bool = True
    """Show progress bars."""
    retry_failed: bool = True
    """On a re-run, retry items that failed before."""
    ray: RaySettings = Field(default_factory=RaySettings)
    """Settings of the Ray runner (runner.kind=ray)."""


class ExportSettings(Settings):
    modes: list[Literal["replace", "double-insert", "reversed"]] = Field(default_factory=lambda: ["replace"])
    """Pair modes to export: replace (real A → synthetic B), double-insert (synthetic B → synthetic C on the same
    erased clip), reversed (synthetic B → real A, so the target side is real footage)."""
    shard_size: int = Field(0, ge=0)
    """Pairs per WebDataset shard under shards/ (0: no shards)."""
    include_rejected: bool = False
    """Also put pairs the judge rejected into the dataset."""


class VideoCutoutSettings(Settings):
    enabled: bool = True
    """In a build, cut out a product whose catalog photo was rejected at `cutout` (a lifestyle shot, a busy
    background) from its own template's curated clips instead: the mask of the best frame, with other frames as
    extra reference views. The photo stays the target whenever its cutout is done."""
    views: int = Field(3, ge=0)
    """Extra reference views kept besides the cutout: crops from other frames of the same clip (another shot may show
    another variant), spread in time, of good score."""
    frames_per_clip: int = Field(24, ge=1)
    """Frames sampled (evenly spaced) from each curated clip as candidates for the cutout and the views."""
    min_area: float = Field(0.01, gt=0, lt=1)
    """A candidate frame's product mask covers at least this fraction of the frame."""
    max_area: float = Field(0.6, gt=0, le=1)
    """A candidate frame's product mask covers at most this fraction of the frame (a larger one has spread over the
    background)."""
    border_margin: float = Field(0.02, ge=0, lt=0.5)
    """A candidate's mask stays at least this far from every frame border (fraction of the short side): a product cut
    by the frame is not whole."""
    max_hand_fraction: float = Field(0.1, ge=0)
    """With a hand detector: a candidate is rejected when hand pixels on the product or within a quarter of its size
    around it exceed this fraction of its mask (hand pixels are always taken out of the mask)."""
    hand_hold: int = Field(1, ge=0)
    """With a hand detector: a candidate in which no hand was found is still rejected (a hand over the product) when
    one was found over the product in a sampled frame of the same clip at most this many samples before or after it:
    the detector misses a hand now and then in a run of frames where it finds it. CRAF001's hand pressing the stamp
    into the clay was found in its sampled frames 13-96 and missed in frame 100, which became an extra view showing
    the stamp's base under the fingers. A frame just after a hand left the product is lost with it. 0 = off."""
    max_support: float = Field(1.3, gt=0)
    """A candidate whose mask's bottom eighth is more than this many times wider than its body carries the table or
    shelf the product stands on (as `cutout.max_support` for photos)."""
    max_piece_lift: float = Field(0.15, ge=0, le=1)
    """A candidate whose mask has a piece hanging above another — its lowest row more than this fraction of the mask's
    height above the mask's lowest row, another piece below it in its columns, nothing of the mask just below it —
    holds parts of the product without the middle that joins them (TOYS012-s01's white-on-white mask: the rockers and
    the manes, not the horses' cream bodies; 16 of its 24 sampled frames lifted 0.52-0.66,
    :func:`pvtt.compose.piece_lift`). Pieces side by side stand on their own base, the rear one's higher in the frame
    (two vases at different depths): every other curated dev clip 0 on all 24 frames
    (`python benchmarks/foreign_measures.py clips WORKSPACE`). 1 = off."""
    min_mask_steadiness: float = Field(0.9, ge=0, le=1)
    """No frame of a clip whose masks keep changing shape qualifies: the median IoU of consecutive masks, the later
    shifted onto the earlier's centroid (`pvtt.stages.product.mask_steadiness`), is below this. A segmentation that
    takes in the wall on one frame and notches through the product on the next is flawed on whichever frame is
    chosen: TOYS012-s00's frame 0, the best of its frames, cut the unicorn's rump and tail off (0.86; TOYS012-s01
    0.82); the other curated dev clips score 0.92 (JEW002-s00's thin bracelets) to 0.99. 0 = off."""
    view_min_score: float = Field(0.75, ge=0, le=1)
    """An extra view scores at least this fraction of the chosen frame's score. At 0.5 two of TOYS002's three views
    were a frame in the middle of a cross-dissolve (0.52 of the chosen frame's score) and a thumb on the lid with a
    strip of table (0.71; MediaPipe missed the hand); its good view scores 0.85, CRAF001's 0.98."""
    peel_support: bool = True
    """Before cutting out the chosen frame and the views, take the surface under the product out of its mask:
    GrabCut, learning the background from the rest of the frame, claims it back, and only pieces at the bottom of
    the product that reach its lower outline are removed (`pvtt.cutout.peel`). TOYS012's horses otherwise carried a
    wedge of the table between their rockers into every pair that inserted them. A product whose own bottom has the
    table's colour loses that part (CRAF001's brass base on a wooden table in one view)."""
    hole_fill: float = Field(3.0, ge=0)
    """Before cutting out the chosen frame and the views, fill the holes of its mask that are not the frame around the
    product seen through: a hole whose median colour (8-bit Lab) is farther from the ring of frame just outside the
    product than this many times that ring's own spread is a part of the product the mask missed
    (`pvtt.stages.product.fill_missed_holes`). TOYS002's wooden box lost its black metal latch to its frame's mask: 152
    levels from the table and hand around it, whose spread is 25, a hole through the box in every pair (dev build
    37). A hole like the ring — the table through a bracelet's loop or a mug's handle — stays. 3 is a margin, not a
    calibration: the dev video products hold no see-through hole. 0 = off."""

    rejected_clips: bool = False
    """When the template's curated clips give no qualifying frame, look in its clips curate rejected as templates to
    edit too — too static, blurry, damaged on some frames, a mask that drifts or takes the hands on some frames: a
    product needs one clean frame, an edit the whole clip. Never in a clip curate found masking the wrong object as a
    whole (the hands grip something else, the mask misses a given box: `pvtt.stages.product.WRONG_OBJECT`). Every
    candidate frame still passes the frame checks here; turn the object checks below on with it (`--preset salient`
    does both), since a rejected clip's mask has not passed curate's."""
    max_object_missed: float = Field(1.0, ge=0, le=1)
    """A candidate frame's mask holds the salient object under it: no more than this share of the object lies
    outside the mask (`pvtt.curate.metrics.object_cover` on the frame, with `curate.salient`'s network, threshold and
    reach, hands taken out). Curate's `max_object_missed` on one frame. 1 = off."""
    max_mask_off_object: float = Field(1.0, ge=0, le=1)
    """A candidate frame's mask lies on the salient object: no more than this share of the mask is off it. Curate's
    `max_mask_off_object` on one frame. 1 = off."""
    min_sharpness: float = Field(20.0, ge=0)
    """A candidate frame's product is at least this sharp: the variance of the Laplacian of the frame's luma over its
    mask grown by 1 % of the frame's short side, so its outline counts (`pvtt.curate.metrics.product_sharpness`, as
    curate measures it, on one frame). In
    the rejected clips of the dev templates whose photos are rejected, the one frame of JEWE003 (in a fade from black:
    10.2) and of CLOT001 (in a camera move: 12.3) that passed every other check was blurred, and the cut with it;
    TOYS002's chosen frame scores 2,172. 0 = off."""
    min_frames: int = Field(2, ge=1)
    """A clip gives a product only when at least this many of its sampled frames qualify: a mask right on one frame
    among many wrong ones is more likely chance than a segmentation that holds the product. In the rejected clips of
    the dev templates whose photos are rejected, SHOE003's one qualifying frame of 48 (the others cut by the frame
    border or the mask off the shoe) was cut without the heel its mask missed, with a line of decode damage across
    its sole; TOYS002's clip has 5 of 24. 1 = off."""
    max_striped_rows: float = Field(0.03, ge=0, le=1)
    """A candidate frame with decode damage — horizontal stripes over more than this share of its rows
    (`pvtt.curate.metrics.striped_rows`) — does not qualify: the cut would carry the stripes. 1 = off."""

    def object_checks(self) -> bool:
        """Whether a frame check that reads the salient-object network is on."""
        return self.max_object_missed < 1 or self.max_mask_off_object < 1

    @model_validator(mode="after")
    def _area_range(self) -> "VideoCutoutSettings":
        if self.min_area >= self.max_area:
            raise ValueError(f"min_area ({self.min_area}) has to be below max_area ({self.max_area})")
        return self


class PipelineConfig(Settings):
    media: MediaSettings = Field(default_factory=MediaSettings)
    shots: ShotSettings = Field(default_factory=ShotSettings)
    normalize: NormalizeSettings = Field(default_factory=NormalizeSettings)
    locate: LocateSettings = Field(default_factory=LocateSettings)
    segment: SegmentSettings = Field(default_factory=SegmentSettings)
    track: TrackSettings = Field(default_factory=TrackSettings)
    curate: CurateSettings = Field(default_factory=CurateSettings)
    hands: HandSettings = Field(default_factory=HandSettings)
    erase: EraseSettings = Field(default_factory=EraseSettings)
    cutout: CutoutSettings = Field(default_factory=CutoutSettings)
    video_cutout: VideoCutoutSettings = Field(default_factory=VideoCutoutSettings)
    pairing: PairingSettings = Field(default_factory=PairingSettings)
    insert: InsertSettings = Field(default_factory=InsertSettings)
    propagate: PropagateSettings = Field(default_factory=PropagateSettings)
    judge: JudgeSettings = Field(default_factory=JudgeSettings)
    export: ExportSettings = Field(default_factory=ExportSettings)
    depth: DepthSettings = Field(default_factory=DepthSettings)
    embed: EmbedSettings = Field(default_factory=EmbedSettings)
    vlm: VlmSettings = Field(default_factory=VlmSettings)
    runner: RunnerSettings = Field(default_factory=RunnerSettings)


def settings_key(*parts: Any) -> str:
    """A stable hex digest of settings models, plain values and upstream keys."""

    def plain(value: Any) -> Any:
        if isinstance(value, Settings):  # the sub-sections of backends not running left out
            return value.key_dump()
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json")
        if isinstance(value, Path):
            return str(value)
        return value

    blob = json.dumps([plain(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _format_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        if err["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key")
        elif err["type"] == "unknown_backend":  # raised by pvtt.settings.Settings; the key already names the stage
            lines.append(f"{key}: unknown backend {err['ctx']['name']}; known: {err['ctx']['known']}")
        else:
            lines.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
    return "invalid config:\n  " + "\n  ".join(lines)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"normalize.fps=24"`` → ``(["normalize", "fps"], 24)``; the value is parsed as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} must look like section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from None
    return [p.strip() for p in key.split(".")], value


def preset_names() -> list[str]:
    """The names of the packaged presets (``pvtt/data/presets/<name>.yaml``)."""
    folder = resources.files("pvtt") / "data" / "presets"
    return sorted(f.name[:-5] for f in folder.iterdir() if f.name.endswith(".yaml")) if folder.is_dir() else []


def load_preset(name: str) -> dict[str, Any]:
    """The settings of the packaged preset ``name`` as a mapping of sections; :class:`ConfigError` listing the
    known presets when there is none of that name."""
    known = preset_names()
    if name not in known:
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(known) or 'none'}")
    return _read_yaml(resources.files("pvtt") / "data" / "presets" / f"{name}.yaml", f"preset {name}")


def _read_yaml(path: Any, what: str) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} is not valid YAML: {exc}") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"{what} must hold a mapping of sections, got {type(loaded).__name__}")
    return loaded or {}


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``update``, section by section (a nested mapping updates, anything else replaces)."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                preset: str | None = None) -> PipelineConfig:
    """Defaults, updated by the packaged ``preset`` (e.g. ``gpu``), then by the YAML file at ``path``, then by
    ``overrides`` (``key.sub=value``)."""
    data: dict[str, Any] = load_preset(preset) if preset else {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        data = _merge(data, _read_yaml(path, f"config file {path}"))
    for text in overrides or []:
        keys, value = parse_override(text)
        node = data
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {key} is not a section")
            node = child
        node[keys[-1]] = value
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_error(exc)) from None


def dump_config(config: PipelineConfig) -> str:
    """The effective config as YAML, defaults included."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def config_reference() -> str:
    """The config reference as a Markdown table (embedded in the README; a test keeps them equal)."""
    lines = ["| key | default | meaning |", "| --- | --- | --- |"]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, info in model.model_fields.items():
            annotation = info.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, f"{prefix}{name}.")
                continue
            default = info.get_default(call_default_factory=True)
            if isinstance(default, BaseModel):
                default = default.model_dump(mode="json")
            text = " ".join((info.description or "").split()).replace("|", "\\|")
            choices = getattr(annotation, "__args__", None)
            if choices and all(isinstance(c, str) for c in choices):
                text += f" One of: {', '.join(choices)}."
            lines.append(f"| `{prefix}{name}` | `{json.dumps(default)}` | {text} |")

    walk(PipelineConfig, "")
    return "\n".join(lines) + "\n"
