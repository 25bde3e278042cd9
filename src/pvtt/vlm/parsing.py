"""Reading a VLM's JSON answer: tolerant of code fences, chatter, single quotes and trailing commas.

:func:`parse_json_object` finds the first balanced ``{…}`` in free text and loads it, repairing the
usual slips of language models. :func:`parse_judge` turns it into :class:`JudgeVerdict` scores,
coerced to numbers ("8/10", "7 out of 10", ``{"score": 7}``) and clamped to the scale; a text that
holds no usable JSON gives every score ``None`` and a ``parse_error`` instead of raising.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

CRITERIA = ("product_identity", "motion_naturalness", "temporal_coherence", "lighting", "artifacts", "safety")

_ALIASES = {
    "identity": "product_identity", "product": "product_identity", "product_fidelity": "product_identity",
    "motion": "motion_naturalness", "motion_quality": "motion_naturalness", "naturalness": "motion_naturalness",
    "temporal_consistency": "temporal_coherence", "coherence": "temporal_coherence",
    "consistency": "temporal_coherence", "temporal": "temporal_coherence",
    "lighting_consistency": "lighting", "illumination": "lighting", "light": "lighting",
    "artifact": "artifacts", "artifact_free": "artifacts", "artifacts_free": "artifacts", "no_artifacts": "artifacts",
    "safe": "safety", "content_safety": "safety",
    "overall_score": "overall", "total": "overall", "score": "overall",
}


@dataclass
class JudgeVerdict:
    """Scores of one pair on the judge's scale; ``None`` where the model gave none or could not be parsed."""

    scores: dict[str, float | None] = field(default_factory=lambda: {c: None for c in CRITERIA})
    overall: float | None = None
    reason: str = ""
    parse_error: str | None = None
    raw: str = ""

    @property
    def ok(self) -> bool:
        return self.parse_error is None


def strip_code_fences(text: str) -> str:
    """The body of the first fenced block (```json … ```), or ``text`` unchanged when there is none."""
    match = re.search(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)(```|$)", text, flags=re.S)
    return match.group(1) if match and "{" in match.group(1) else text


def _first_balanced_object(text: str) -> str | None:
    start = text.find("{")
    while start != -1:
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
            elif ch in "\"'":
                quote = ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return text[start:i + 1]
        # unbalanced (a truncated answer): close what is open and let the loader try
        if depth > 0:
            return text[start:] + "}" * depth
        start = text.find("{", start + 1)
    return None


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


def _canonical(key: str) -> str:
    key = re.sub(r"[\s-]+", "_", key.strip().lower())
    return _ALIASES.get(key, key)


def parse_judge(text: str, low: float = 1.0, high: float = 10.0,
                criteria: tuple[str, ...] = CRITERIA) -> JudgeVerdict:
    """Scores for ``criteria`` from a judge's free-text answer, never raising on a bad answer."""
    verdict = JudgeVerdict(scores={c: None for c in criteria}, raw=text or "")
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
        elif name == "overall":
            verdict.overall = coerce_score(value, low, high)
        elif name in ("reason", "reasons", "explanation", "comment", "comments", "rationale") and value:
            verdict.reason = value if isinstance(value, str) else json.dumps(value)
    present = [v for v in verdict.scores.values() if v is not None]
    if not present and verdict.overall is None:
        verdict.parse_error = "the JSON object holds none of the expected scores: " + ", ".join(criteria)
    elif verdict.overall is None:
        verdict.overall = float(sum(present) / len(present))
    return verdict
