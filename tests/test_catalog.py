"""Catalog ingest: the three layouts are told apart, metadata is kept, bad entries become problems."""

from __future__ import annotations

import json

import pytest

from pvtt.catalog import load_catalog
from pvtt.errors import BadInput


def _touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _pvtt_layout(root, samples):
    _touch(root / "annotations" / "metadata.json", json.dumps({"samples": samples}).encode())
    return root


def _sample(sample_id, cat="toys", video=True, image=True):
    s = {"id": sample_id, "category": cat, "subcategory": "car",
         "source_product": {"description": f"{sample_id} thing"}}
    if video:
        s["template_video"] = {"path": f"videos/{cat}/{sample_id}.mp4"}
    if image:
        s["source_product"]["image_path"] = f"images/{cat}/{sample_id}_source.jpg"
    return s


def test_pvtt_layout_links_templates_to_their_products(tmp_path):
    for sid in ("A1", "B2"):
        _touch(tmp_path / f"videos/toys/{sid}.mp4")
        _touch(tmp_path / f"images/toys/{sid}_source.jpg")
    catalog = load_catalog(_pvtt_layout(tmp_path, [_sample("A1"), _sample("B2")]))
    assert catalog.layout == "pvtt"
    assert [t.id for t in catalog.templates] == ["A1", "B2"]
    assert catalog.templates[0].product_id == "A1" and catalog.products[0].template_id == "A1"
    assert catalog.templates[0].subcategory == "car" and catalog.products[1].description == "B2 thing"
    assert catalog.problems == []


def test_pvtt_layout_missing_files_and_duplicates_are_problems(tmp_path):
    _touch(tmp_path / "videos/toys/A1.mp4")
    _touch(tmp_path / "images/toys/A1_source.jpg")
    samples = [_sample("A1"), _sample("A1"), _sample("GONE"), {"category": "x"}]
    catalog = load_catalog(_pvtt_layout(tmp_path, samples))
    assert [t.id for t in catalog.templates] == ["A1"]
    reasons = " | ".join(p.reason for p in catalog.problems)
    assert "duplicate template id 'A1'" in reasons
    assert "video file not found" in reasons and "GONE" in reasons
    assert "has no 'id'" in reasons


def test_malformed_metadata_names_the_file_and_line(tmp_path):
    _touch(tmp_path / "annotations" / "metadata.json", b'{"samples": [\n{"id": "A",}\n]}')
    with pytest.raises(BadInput, match=r"metadata.json is not valid JSON: .* line 2"):
        load_catalog(tmp_path)


def test_plain_folder_ids_from_names_and_categories_from_subfolders(tmp_path):
    _touch(tmp_path / "videos/shoes/run.mp4")
    _touch(tmp_path / "videos/top.mov")
    _touch(tmp_path / "videos/notes.txt")
    _touch(tmp_path / "images/mug one.png")
    catalog = load_catalog(tmp_path)
    assert catalog.layout == "folder"
    assert {(t.id, t.category) for t in catalog.templates} == {("run", "shoes"), ("top", None)}
    assert [p.id for p in catalog.products] == ["mug_one"]
    assert all(p.template_id is None for p in catalog.products)


def test_csv_manifest(tmp_path):
    _touch(tmp_path / "v/a.mp4")
    _touch(tmp_path / "i/a.jpg")
    _touch(tmp_path / "i/b.jpg")
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "id,video,image,category,subcategory,description,box\n"
        'a,v/a.mp4,i/a.jpg,toys,car,red car,"1,2,30,40"\n'
        "b,,i/b.jpg,toys,,blue car,\n"
        "c,v/missing.mp4,,,,,\n"
    )
    catalog = load_catalog(manifest)
    assert catalog.layout == "manifest"
    assert [t.id for t in catalog.templates] == ["a"] and catalog.templates[0].box == (1.0, 2.0, 30.0, 40.0)
    assert [p.id for p in catalog.products] == ["a", "b"]
    assert catalog.products[0].template_id == "a" and catalog.products[1].template_id is None
    assert any("missing.mp4" in p.reason for p in catalog.problems)


def test_jsonl_manifest_with_bad_line(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('{"id": "a", "video": "a.mp4"}\n{not json}\n')
    with pytest.raises(BadInput, match="line 2"):
        load_catalog(manifest)


def test_unknown_layout_is_a_clear_error(tmp_path):
    with pytest.raises(BadInput, match="cannot tell the layout"):
        load_catalog(tmp_path)
    with pytest.raises(BadInput, match="not found"):
        load_catalog(tmp_path / "nope")


def test_real_dev_catalog(dev_data):
    catalog = load_catalog(dev_data)
    assert len(catalog.templates) == 15 and len(catalog.products) == 15 and not catalog.problems
    jew = next(t for t in catalog.templates if t.id == "JEW002")
    assert jew.category == "jewelry" and jew.subcategory == "bracelet" and jew.video.is_file()
