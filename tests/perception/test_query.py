"""Detector queries from Etsy titles: the product named, the sales copy dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pvtt.locate.query import MAX_WORDS, product_query

DEV_METADATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "pvtt-dev" / "annotations" / \
    "metadata.json"

# real titles of the development subset (annotations/metadata.json), with the product each names
TITLES = [
    ("Personalized Couple Bracelets Set Two", "couple bracelets"),
    ("Hand Knitted Wool Socks, Extra Thick Warm Winter Socks", "knitted wool socks"),
    ("Personalized Compass Anniversary, Birthday, Groomsmen Gift for Him Custom Engraved Christmas Gift For Dad Boy "
     "Scout Cub Eagle Camping Gift", "compass"),
    ("Yellow Whistling Tea Kettle: Stainless Steel with Wood Handle", "yellow whistling tea kettle"),
    ("Personalized Clay Stamp | Custom Pottery Stamp | Ceramics Stamp | Gifts For Potter | Brass Mold For Clay | "
     "Pottery tools", "clay stamp"),
    ("Mens Jewelry, Jade Bracelet, Beaded Bracelet for Men, Mens Bracelet, Gifts for Him, Gifts for Dad, "
     "Anniversary Gifts for Him, Birthday Gifts", "jade bracelet"),
    ("Handmade Wooden Rocking Horse Toy, Miniature Wooden Horse Toys, Toddler Toy, Baby Shower Gift, Nursery Shelf "
     "Decor, Eco-Friendly Baby Gift", "wooden rocking horse toy"),
    ("Spaceship Creative, Park Sounds, The Land, Flying around the World, Park Sounds, Ride Sounds", "spaceship"),
    ("Jukebox Bluetooth speaker, made with real wood", "jukebox bluetooth speaker"),
    ("Handmade set of 2 ceramic vases, bud vases, speckled vases, striped vases", "ceramic vases"),
    ("Guitar Pick Box - Fret Board Design", "guitar pick box"),
    ("Golden Women Hand Embroidery Designer Heels Indian Handmade Footwear Wedding Heels Ethnic Indian Footwear "
     "Block Heels Pearl Bridal Heel", "golden embroidery designer heels"),
    # the example
    ("Personalized Wooden Watch for Men, Engraved Gift For Him | Anniversary Gift", "wooden watch"),
]


@pytest.mark.parametrize("title,expected", TITLES)
def test_a_title_becomes_the_product_it_names(title, expected):
    assert product_query(None, None, title) == [expected]


def test_the_subcategory_is_added_unless_the_title_says_it_and_stands_in_without_a_title():
    assert product_query("jewelry", "bracelet", "Personalized Couple Bracelets Set Two") == ["couple bracelets"]
    assert product_query("home", "Valet Tray", "Molded Leather Catchall, Modern Colorful Valet Tray") == \
        ["molded leather catchall", "valet tray"]
    # nothing left of the title: the subcategory, then the category, then a generic word
    assert product_query("home", "Mug", "Gift for Him | Anniversary Gift") == ["mug"]
    assert product_query("Home", None, "") == ["home"]
    assert product_query(None, None, None) == ["product"]


def test_the_real_titles_all_give_short_lowercase_queries():
    if not DEV_METADATA.is_file():
        pytest.skip("no development data")
    for sample in json.loads(DEV_METADATA.read_text())["samples"]:
        queries = product_query(sample.get("category"), sample.get("subcategory"),
                                sample["source_product"].get("description"))
        for query in queries:
            assert query and query == query.lower() and len(query.split()) <= MAX_WORDS, (sample["id"], query)
            assert not {"gift", "gifts", "personalized", "custom", "handmade", "for"} & set(query.split())
