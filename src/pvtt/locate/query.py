"""Detector text queries from catalog product titles.

Etsy titles are sales copy: "Personalized Wooden Watch for Men, Engraved Gift For Him | Anniversary Gift".
An open-vocabulary detector wants the thing itself: "wooden watch". :func:`product_query` keeps the first
title segment that still names something after the sales words are dropped; the subcategory, then the
category, stand in when the title yields nothing.
"""

from __future__ import annotations

import re

MAX_WORDS = 4

# a title's segments: listing parts (| , ; : – —), a spaced hyphen, brackets, slashes
_SEGMENTS = re.compile(r"\s*(?:[|,;:/()\[\]{}–—]|\s-\s)\s*")
# within a segment, what follows these words is the audience, material detail or occasion, not the product
_TAIL = re.compile(r"\b(?:for|with|from|by|made)\b.*$")
# counts ("set of 2", "Set Two", "3 pcs", "3rd"), stock phrases
_DROP = re.compile(r"\bready to ship\b"
                   r"|\b(?:set|pack|lot|bundle|pair|box)s?\s+(?:of\s+)?(?:\d+|one|two|three|four|five|six|ten|a dozen)\b"
                   r"|\b\d+\s*(?:pcs|pc|pieces|piece|x)\b|\b\d+(?:st|nd|rd|th)?\b")
_WORDS = re.compile(r"[a-z0-9]+(?:['’-][a-z0-9]+)*")
# "hand" + a craft word ("hand knitted", "hand embroidery") says how it was made, not what it is
_CRAFTS = ("made", "knit", "knitted", "painted", "crafted", "carved", "stitched", "sewn", "woven", "poured",
           "stamped", "forged", "blown", "thrown", "lettered", "dyed", "embroidery", "embroidered", "tooled", "cut",
           "built", "bound", "turned")
SALES_WORDS = frozenset("""
    personalized personalised personalize personalise custom customized customised customizable engraved engraving
    monogram monogrammed gift gifts giftable present presents idea ideas handmade handcrafted homemade hand-made
    hand-crafted unique anniversary birthday christmas xmas holiday holidays valentine valentines wedding bridal
    bridesmaid bridesmaids groomsmen groomsman housewarming graduation retirement mother mothers father fathers mom
    moms mum dad dads grandma grandpa him her his hers men man mens women woman womens boyfriend girlfriend husband
    wife couples best new sale free shipping ready cute beautiful perfect premium luxury luxurious creative trendy
    minimalist minimal eco eco-friendly extra super quality high day a an the
""".split())
# words that alone name no product: a segment made only of these is skipped ("Mens Jewelry, Jade Bracelet")
GENERIC_WORDS = frozenset("""
    jewelry jewellery accessories accessory decor home clothing apparel art arts craft crafts supplies electronics
    media item items product products goods collection
""".split())


def _words(text: str) -> list[str]:
    """The product words of one title segment, lowercased, sales words and counts dropped."""
    text = _TAIL.sub("", text.lower().replace("’", "'"))
    text = _DROP.sub(" ", text)
    words = []
    tokens = _WORDS.findall(text)
    for i, token in enumerate(tokens):
        word = token[:-2] if token.endswith("'s") else token  # men's -> men, mother's -> mother
        if word == "hand" and i + 1 < len(tokens) and tokens[i + 1] in _CRAFTS or (
                word.startswith("hand-") and word[5:] in _CRAFTS):
            continue
        if word in SALES_WORDS or token in SALES_WORDS:
            continue
        words.append(word)
    return words


def clean_title(text: str | None) -> str:
    """The product a title names, at most :data:`MAX_WORDS` lowercase words; "" when it names none."""
    for segment in _SEGMENTS.split(text or ""):
        words = _words(segment)
        if words and not all(w in GENERIC_WORDS for w in words):
            return " ".join(words[:MAX_WORDS])
    return ""


def product_query(category: str | None, subcategory: str | None, description: str | None) -> list[str]:
    """Detector queries for a product: its cleaned title (``description``, see :func:`clean_title`), plus its
    ``subcategory`` when the title does not already say it; without a usable title the subcategory alone, then
    the ``category``, then ``"product"``."""
    query = clean_title(description)
    sub = " ".join(_WORDS.findall((subcategory or "").lower()))
    if query:
        return [query, sub] if sub and sub not in query else [query]
    cat = " ".join(_WORDS.findall((category or "").lower()))
    return [sub or cat or "product"]


__all__ = ["GENERIC_WORDS", "MAX_WORDS", "SALES_WORDS", "clean_title", "product_query"]
