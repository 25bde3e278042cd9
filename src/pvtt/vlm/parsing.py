"""Reading a VLM's JSON answer: tolerant of code fences, chatter, single quotes and trailing commas.

:func:`parse_json_object` finds the first balanced ``{…}`` in free text and loads it, repairing the
usual slips of language models. :func:`parse_judge` turns it into :class:`JudgeVerdict` scores,
coerced to numbers ("8/10", "7 out of 10", ``{"score": 7}``) and clamped to the scale, and yes/no
checks (:data:`CHECKS`); a text that holds no usable JSON gives every score ``None`` and a
``parse_error`` instead of raising. :func:`parse_points` reads pointing answers
(``[{"label": "handle", "point_2d": [x, y]}]``, Qwen2.5-VL's grounding format) in absolute pixels,
0-1000 or 0-1 normalised coordinates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

CRITERIA = ("product_identity", "motion_naturalness", "temporal_coherence", "lighting", "artifacts", "safety")
# yes/no questions of the judge → the answer of a good edit
CHECKS: dict[str, bool] = {"old_product_visible": False, "matches_reference": True, "floating": False,
                           "wrong_scale": False}

_ALIASES = {
    "identity": "product_identity", "product": "product_identity", "product_fidelity": "product_identity",
    "motion": "motion_naturalness", "motion_quality": "motion_naturalness", "naturalness": "motion_naturalness",
    "temporal_consistency": "temporal_coherence", "coherence": "temporal_coherence",
    "consistency": "temporal_coherence", "temporal": "temporal_coherence",
    "lighting_consistency": "lighting", "illumination": "lighting", "light": "lighting",
    "artifact": "artifacts", "artifact_free": "artifacts", "artifacts_free": "artifacts", "no_artifacts": "artifacts",
    "safe": "safety", "content_safety": "safety",
    "overall_score": "overall", "total": "overall", "score": "overall",
    "original_product_visible": "old_product_visible", "product_a_visible": "old_product_visible",
    "old_product_still_visible": "old_product_visible", "remnant": "old_product_visible",
    "matches_photo": "matches_reference", "same_product": "matches_reference",
    "matches_reference_image": "matches_reference", "reference_match": "matches_reference",
    "is_floating": "floating", "floats": "floating", "product_floating": "floating",
    "scale_wrong": "wrong_scale", "bad_scale": "wrong_scale", "wrong_size": "wrong_scale",
}


@dataclass
class JudgeVerdict:
    """Scores of one pair on the judge's scale; ``None`` where the model gave none or could not be parsed."""

    scores: dict[str, float | None] = field(default_factory=lambda: {c: None for c in CRITERIA})
    overall: float | None = None
    reason: str = ""
    parse_error: str | None = None
    raw: str = ""
    checks: dict[str, bool | None] = field(default_factory=lambda: {c: None for c in CHECKS})  # yes/no answers
    prompt: str = ""  # the question the model answered (set by VisionLanguageModel.judge)

    @property
    def ok(self) -> bool:
        return self.parse_error is None


def strip_code_fences(text: str) -> str:
    """The body of the first fenced block (```json … ```), or ``text`` unchanged when there is none."""
    match = re.search(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)(```|$)", text, flags=re.S)
    return match.group(1) if match and "{" in match.group(1) else text


def _braces(text: str, start: int = 0, apostrophes: bool = False) -> Iterator[tuple[int, int]]:
    """``(index, depth)`` of every brace of ``text[start:]`` outside quoted strings, ``depth`` counted after it
    (a ``}`` that closes nothing is passed over). A ``'`` opens a string; with ``apostrophes`` only inside an
    object and not after a letter or digit (the apostrophe of "it's" does not)."""
    depth, quote, escape = 0, "", False
    for i in range(start, len(text)):
        ch = text[i]
        if quote:
            if escape:
                escape = False
            elif ch == "\\":
                escape = True
            elif ch == quote:
                quote = ""
        elif ch == '"' or (ch == "'" and (not apostrophes or (depth > 0 and not text[i - 1].isalnum()))):
            quote = ch
        elif ch == "{" or (ch == "}" and depth > 0):
            depth += 1 if ch == "{" else -1
            yield i, depth


def _first_balanced_object(text: str) -> str | None:
    start = text.find("{")
    if start == -1:
        return None
    depth = 0
    for i, depth in _braces(text, start):
        if depth == 0:
            return text[start:i + 1]
    # unbalanced (a truncated answer): close what is open and let the loader try
    return text[start:] + "}" * depth


def _repair(blob: str) -> str:
    blob = re.sub(r",\s*([}\]])", r"\1", blob)  # trailing commas
    blob = re.sub(r"\bTrue\b", "true", blob)
    blob = re.sub(r"\bFalse\b", "false", blob)
    blob = re.sub(r"\bNone\b", "null", blob)
    if "'" in blob and '"' not in blob:
        blob = blob.replace("'", '"')
    blob = re.sub(r"([{,]\s*)([A-Za-z_][\w\s-]*?)(\s*:)", lambda m: f'{m.group(1)}"{m.group(2)}"{m.group(3)}', blob)
    return blob


def parse_json_object(text: str) -> dict[str, Any]:
    """The first JSON object in ``text``; raises ``ValueError`` with the reason when there is none."""
    body = strip_code_fences(text or "")
    blob = _first_balanced_object(body)
    if blob is None:
        raise ValueError("no JSON object in the model's answer")
    for candidate in (blob, _repair(blob)):
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    raise ValueError(f"the model's answer holds no valid JSON object: {blob[:80]!r}")


def coerce_score(value: Any, low: float, high: float) -> float | None:
    """A number on ``[low, high]`` from ``8``, ``"8.5"``, ``"8/10"`` (rescaled when the scale differs), ``"7 out of 10"``, ``{"score": 7}``, ``true``."""
    if isinstance(value, dict):
        for key in ("score", "value", "rating"):
            if key in value:
                return coerce_score(value[key], low, high)
        return None
    if isinstance(value, bool):
        return float(high if value else low)
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        match = re.search(r"(-?\d+(?:\.\d+)?)\s*(?:/|out of)\s*(\d+(?:\.\d+)?)", value)
        if match and float(match.group(2)) > 0:
            numerator, denominator = float(match.group(1)), float(match.group(2))
            number = numerator if denominator == high else low + numerator / denominator * (high - low)
        else:
            match = re.search(r"-?\d+(?:\.\d+)?", value)
            if not match:
                lowered = value.strip().lower()
                if lowered in ("yes", "safe", "true"):
                    return float(high)
                if lowered in ("no", "unsafe", "false"):
                    return float(low)
                return None
            number = float(match.group(0))
    else:
        return None
    if number != number:  # NaN
        return None
    return float(min(max(number, low), high))


def coerce_bool(value: Any) -> bool | None:
    """``True``/``False`` from ``true``, ``"yes"``, ``"No, it is gone"``, ``1``, ``0``; ``None`` otherwise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, dict):
        for key in ("answer", "value"):
            if key in value:
                return coerce_bool(value[key])
        return None
    if isinstance(value, str):
        word = re.match(r"\s*([A-Za-z]+)", value)
        if word:
            lowered = word.group(1).lower()
            if lowered in ("yes", "true", "y"):
                return True
            if lowered in ("no", "false", "n"):
                return False
    return None


def _canonical(key: str) -> str:
    key = re.sub(r"[\s-]+", "_", key.strip().lower())
    return _ALIASES.get(key, key)


def parse_judge(text: str, low: float = 1.0, high: float = 10.0,
                criteria: tuple[str, ...] = CRITERIA, checks: tuple[str, ...] = tuple(CHECKS)) -> JudgeVerdict:
    """Scores for ``criteria`` and yes/no ``checks`` from a judge's free-text answer, never raising on a bad answer."""
    verdict = JudgeVerdict(scores={c: None for c in criteria}, raw=text or "", checks={c: None for c in checks})
    try:
        data = parse_json_object(text)
    except ValueError as exc:
        verdict.parse_error = str(exc)
        return verdict
    if isinstance(data.get("scores"), dict):  # {"scores": {...}, "reason": ...}
        data = {**data, **data["scores"]}
    for key, value in data.items():
        name = _canonical(str(key))
        if name in verdict.scores:
            verdict.scores[name] = coerce_score(value, low, high)
        elif name in verdict.checks:
            verdict.checks[name] = coerce_bool(value)
        elif name == "overall":
            verdict.overall = coerce_score(value, low, high)
        elif name in ("reason", "reasons", "explanation", "comment", "comments", "rationale") and value:
            verdict.reason = value if isinstance(value, str) else json.dumps(value)
    present = [v for v in verdict.scores.values() if v is not None]
    answered = [v for v in verdict.checks.values() if v is not None]
    if not present and verdict.overall is None and not answered:
        verdict.parse_error = "the JSON object holds none of the expected scores: " + ", ".join(criteria)
    elif verdict.overall is None and present:
        verdict.overall = float(sum(present) / len(present))
    return verdict



# pointing answers
_POINT_KEYS = ("point_2d", "point", "coordinates", "coordinate", "coords", "xy", "position", "location", "center")
_BOX_KEYS = ("bbox_2d", "bbox", "box", "box_2d")
_LABEL_KEYS = ("label", "name", "part", "description", "object")


@dataclass
class PointAnswer:
    """Points a model named on an image: ``(label, x, y)`` in pixels of the image it was given."""

    points: list[tuple[str, float, float]] = field(default_factory=list)
    coords: str = ""  # how the numbers were read: "absolute", "norm1000" or "norm1"
    dropped: list[str] = field(default_factory=list)  # points left out, each with why
    parse_error: str | None = None
    raw: str = ""
    prompt: str = ""  # the question (set by VisionLanguageModel.point)

    @property
    def ok(self) -> bool:
        return self.parse_error is None


def _top_level_objects(text: str) -> list[str]:
    """Every complete ``{…}`` at the outermost level of ``text`` (braces inside strings ignored); a truncated
    last object is left out."""
    out, start = [], -1
    for i, depth in _braces(text, apostrophes=True):
        if depth == 1 and text[i] == "{":
            start = i
        elif depth == 0:
            out.append(text[start:i + 1])
    return out


def _load(blob: str) -> Any:
    for candidate in (blob, _repair(blob)):
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    return None


def _numbers(value: Any, count: int) -> list[float] | None:
    if isinstance(value, str):
        value = re.findall(r"-?\d+(?:\.\d+)?", value)
    if not isinstance(value, (list, tuple)) or len(value) != count:
        return None
    try:
        numbers = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    return numbers if all(n == n for n in numbers) else None


def _label(entry: dict, fallback: str) -> str:
    for key in _LABEL_KEYS:
        if isinstance(entry.get(key), str) and entry[key].strip():
            return " ".join(entry[key].split())[:40]
    return fallback


def _points_of(value: Any, out: list[tuple[str, float, float]], label: str = "") -> None:
    """Collect ``(label, x, y)`` from one parsed JSON value, in the formats models use."""
    if isinstance(value, list):
        for item in value:
            _points_of(item, out, label)
        return
    if not isinstance(value, dict):
        return
    entry = {str(k).strip().lower(): v for k, v in value.items()}
    name = _label(entry, label or f"part {len(out) + 1}")
    for key in _POINT_KEYS:
        xy = _numbers(entry.get(key), 2)
        if xy:
            out.append((name, xy[0], xy[1]))
            return
    if "x" in entry and "y" in entry:
        xy = _numbers([entry["x"], entry["y"]], 2)
        if xy:
            out.append((name, xy[0], xy[1]))
            return
    for key in _BOX_KEYS:
        box = _numbers(entry.get(key), 4)
        if box:
            out.append((name, (box[0] + box[2]) / 2, (box[1] + box[3]) / 2))
            return
    for key, item in value.items():  # {"points": [...]}, or {"handle": [x, y], "cap": [x, y]}
        xy = _numbers(item, 2) if not isinstance(item, str) else None
        if xy:
            out.append((" ".join(str(key).split())[:40], xy[0], xy[1]))
        elif isinstance(item, (list, dict)):
            _points_of(item, out, "")


def parse_points(text: str, width: int, height: int,
                 coords: str = "auto") -> PointAnswer:
    """Labelled points from a model's answer about a ``width`` × ``height`` image, in that image's pixels.

    ``coords``: ``absolute`` (pixels of the image the model saw, Qwen2.5-VL), ``norm1000`` (0-1000, Qwen2-VL
    and others), ``norm1`` (0-1), or ``auto``: 0-1 when every number is at most 1, 0-1000 when some point lies
    beyond the image but none beyond 1000, else absolute. Points outside the image are dropped (with why);
    an answer with no point gives ``parse_error`` instead of raising."""
    answer = PointAnswer(raw=text or "")
    body = strip_code_fences(text or "")
    found: list[tuple[str, float, float]] = []
    for blob in _top_level_objects(body):
        value = _load(blob)
        if value is not None:
            _points_of(value, found)
    if not found:  # a bare list of pairs: [[x, y], [x, y]]
        for match in re.finditer(r"\[\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\]", body):
            found.append((f"part {len(found) + 1}", float(match.group(1)), float(match.group(2))))
    if not found:
        answer.parse_error = "no point in the model's answer"
        return answer
    if coords == "auto":
        values = [v for _, x, y in found for v in (x, y)]
        beyond = any(x > width * 1.02 or y > height * 1.02 for _, x, y in found)
        if max(values) <= 1.0 and max(width, height) > 4:
            coords = "norm1"
        elif beyond and max(values) <= 1000:
            coords = "norm1000"
        else:
            coords = "absolute"
    if coords not in ("absolute", "norm1000", "norm1"):
        raise ValueError(f"coords must be auto, absolute, norm1000 or norm1, got {coords!r}")
    answer.coords = coords
    scale = {"absolute": (1.0, 1.0), "norm1000": (width / 1000, height / 1000), "norm1": (width, height)}[coords]
    for label, x, y in found:
        px, py = x * scale[0], y * scale[1]
        if 0 <= px <= width and 0 <= py <= height:
            answer.points.append((label, px, py))
        else:
            answer.dropped.append(f"{label} ({x:g}, {y:g}): outside the {width}x{height} image")
    if not answer.points:
        answer.parse_error = "every point lies outside the image"
    return answer
