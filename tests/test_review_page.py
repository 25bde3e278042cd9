"""The review page loads in a real headless browser with no console errors, plays its videos, sorts and filters."""

from __future__ import annotations

import time

import numpy as np
from PIL import Image

from browser import chromium_driver
from pvtt.review_page import write_review_page
from pvtt.testmedia import panning_frames, textured_background, write_video


def _rows(root):
    frames = panning_frames(textured_background(128, 128, 0), 10, 64, 96)
    (root / "media").mkdir(parents=True)
    write_video(root / "media" / "a.mp4", frames)
    Image.fromarray(frames[0]).save(root / "media" / "t.png")
    rows = []
    for n, (verdict, difficulty, ssim) in enumerate([("keep", "easy", 0.9), ("reject", "hard", 0.4),
                                                     ("keep", "hard", 0.7)]):
        files = {"source_video": "media/a.mp4", "edited_video": "media/a.mp4", "overlay_video": "media/a.mp4",
                 "target_image": "media/t.png"}
        rows.append({"pair_id": f"p{n}", "verdict": verdict, "difficulty": difficulty, "mode": "replace",
                     "scores": {"ssim": ssim, "psnr": 20 + n}, "reasons": [] if verdict == "keep" else ["bad </script>"],
                     "files": files, "instruction": "Replace it."})
    return rows


def test_review_page_in_headless_chromium(tmp_path):
    page = write_review_page(tmp_path / "index.html", _rows(tmp_path), {"pairs": 3, "verdicts": {"keep": 2}})
    driver = chromium_driver()
    try:
        driver.get(page.as_uri())
        deadline = time.time() + 15
        ready = 0
        while time.time() < deadline:
            ready = driver.execute_script(
                "return [...document.querySelectorAll('video')].filter(v => v.readyState >= 2 && v.videoWidth > 0).length")
            if ready == 9:
                break
            time.sleep(0.2)
        assert ready == 9, "every video (3 pairs x 3) decodes in the browser"
        assert driver.execute_script("return document.getElementById('count').textContent") == "3 of 3 pairs"
        # sort by ssim, descending: p0 (0.9), p2 (0.7), p1 (0.4)
        driver.execute_script("const s=document.getElementById('sort'); s.value='ssim'; s.dispatchEvent(new Event('change'))")
        order = driver.execute_script("return [...document.querySelectorAll('.pair')].map(e => e.id)")
        assert order == ["pair-p0", "pair-p2", "pair-p1"]
        driver.execute_script("const s=document.getElementById('verdict'); s.value='reject'; s.dispatchEvent(new Event('change'))")
        assert driver.execute_script("return document.querySelectorAll('.pair').length") == 1
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
    finally:
        driver.quit()
