"""Shared fixtures: one tiny embedded corpus (a few seconds to make) and one prepared tiny
recipe folder (prepare.sh --profile tiny, about 20 s) for the whole run."""

import os
import shutil
import subprocess
import sys
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


def run_prepare(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """prepare.sh from a copy of the recipe folder, in this test's Python environment."""
    recipe = workdir / "ASR"
    if not recipe.exists():
        shutil.copytree(RECIPE_DIR, recipe,
                        ignore=shutil.ignore_patterns("data", "download", "exp", "exp-*"))
    env = dict(os.environ, ICEFALL_KD_SKIP_INSTALL="1",
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    return subprocess.run(["bash", "prepare.sh", *args], cwd=recipe, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def prepared_tiny(tmp_path_factory) -> Path:
    """A recipe folder after ``prepare.sh --profile tiny`` (data/ with lang_bpe_200)."""
    workdir = tmp_path_factory.mktemp("recipe")
    result = run_prepare(workdir, "--profile", "tiny")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return workdir / "ASR"
