"""Shared fixtures: one tiny embedded corpus (a few seconds to make) for the whole run."""

from pathlib import Path

import pytest

from icefall_kd.corpus.profiles import get_profile
from icefall_kd.corpus.synthesize import synthesize_corpus

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPE_DIR = REPO_ROOT / "egs" / "librispeech" / "ASR"


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """``<dir>/LibriSpeech/<part>/...`` of the tiny profile, seed 42."""
    out = tmp_path_factory.mktemp("tts-tiny")
    synthesize_corpus(out, get_profile("tiny"), seed=42, num_jobs=2)
    return out / "LibriSpeech"
