"""Instruction text of a pair: template-based, several phrasings, chosen by a seed.

``make_instruction("bracelet", "pearl necklace", seed)`` →
"Replace the bracelet with the pearl necklace from the reference image, keeping the camera motion,
lighting and background unchanged." (or one of the other phrasings).
"""

from __future__ import annotations

import random
import re

TEMPLATES = [
    "Replace the {source} with the {target} from the reference image, keeping the camera motion, lighting and "
    "background unchanged.",
    "Swap the {source} for the {target} shown in the reference image; keep the same camera movement, lighting and "
    "background.",
    "Change the {source} in the video to the {target} from the reference photo while preserving the motion, "
    "lighting and scene.",
    "Substitute the {target} from the reference image for the {source}, following the original camera motion and "
    "keeping the background as it is.",
    "Turn the {source} into the {target} in the reference image, with the camera motion, lighting and background "
    "left unchanged.",
    "Show the {target} from the reference image instead of the {source}, moving exactly as the {source} does, "
    "with the lighting and background untouched.",
]


def _noun(text: str | None, fallback: str) -> str:
    if not text or not text.strip():
        return fallback
    text = " ".join(text.strip().split()).rstrip(".")
    text = re.sub(r"^(a|an|the)\s+", "", text, flags=re.IGNORECASE)
    return text[0].lower() + text[1:] if text[:1].isupper() and not text[1:2].isupper() else text


def make_instruction(source: str | None, target: str | None, seed: int) -> str:
    """One phrasing (chosen by ``seed``) of "replace ``source`` with ``target``"; ``None`` → "product"."""
    rng = random.Random(seed)
    template = TEMPLATES[rng.randrange(len(TEMPLATES))]
    src = _noun(source, "product")
    tgt = _noun(target, "new product" if src == "product" else "product")
    return template.format(source=src, target=tgt)


__all__ = ["TEMPLATES", "make_instruction"]
