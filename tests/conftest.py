"""Shared test fixtures. Paths to the real media in ../shared (next to the repo checkout)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TRAJCRAFTER_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared``: skipped on a developer's machine without it, a failure where it must be
    (``TRAJCRAFTER_REQUIRE_SHARED=1``, set by CI) so media tests never silently stop running."""
    if not SHARED.is_dir():
        if os.environ.get("TRAJCRAFTER_REQUIRE_SHARED"):
            pytest.fail(f"shared data folder not found at {SHARED} (TRAJCRAFTER_REQUIRE_SHARED is set)")
        pytest.skip(f"shared data folder not found at {SHARED}")
    return SHARED


@pytest.fixture(scope="session")
def media_dir(shared_dir) -> Path:
    return shared_dir / "media"


@pytest.fixture(scope="session")
def trajectories_dir(shared_dir) -> Path:
    return shared_dir / "trajectories"
