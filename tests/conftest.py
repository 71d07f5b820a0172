"""Shared fixtures: where the shared media and golden vectors are, and small generated checkpoints."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from kit import REPO, SHARED

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    assert SHARED.is_dir(), f"shared folder not found at {SHARED}; set FOM_SHARED_DIR"
    return SHARED


@pytest.fixture(scope="session")
def media_dir(shared_dir) -> Path:
    return shared_dir / "media"


@pytest.fixture(scope="session")
def golden_dir(shared_dir) -> Path:
    return shared_dir / "golden"


@pytest.fixture(scope="session")
def tiny_model():
    """A small random FOMM (vox structure, narrow widths): fast on a CPU."""
    from fom_pipeline.testing import random_model

    return random_model(seed=0)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_model) -> Path:
    """The tiny model saved as .safetensors, for tests that load from a file."""
    path = tmp_path_factory.mktemp("weights") / "fom-tiny.safetensors"
    tiny_model.save(path)
    return path


@pytest.fixture(scope="session")
def tracking_checkpoint(tmp_path_factory) -> Path:
    """The tracking model (fom_pipeline.testing.tracking_model) saved as .safetensors."""
    from fom_pipeline.testing import tracking_model

    path = tmp_path_factory.mktemp("tracking") / "tracking.safetensors"
    tracking_model().save(path)
    return path
