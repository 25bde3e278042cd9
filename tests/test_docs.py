"""The README's config reference is the generated one, so docs and code cannot drift apart."""

from __future__ import annotations

from pathlib import Path

from pvtt.config import config_reference

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_config_reference_matches_the_code():
    text = README.read_text()
    start = text.index("<!-- config-reference:start")
    start = text.index("\n", start) + 1
    end = text.index("<!-- config-reference:end -->")
    assert text[start:end] == config_reference(), "run `pvtt config reference` and paste it into README.md"
