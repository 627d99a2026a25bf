"""A fixed input is never left behind: prepare.sh's stage stamps redo exactly the work whose
inputs changed, the rerun equals a clean run (manifests and vocabulary byte for byte, features
to lilcom's precision), and validation compares the cuts with the manifests they came from."""

import filecmp
import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from lhotse import CutSet, load_manifest

from icefall_kd.data.stage_stamp import Unit, adopt_legacy, record, stale_units
from icefall_kd.data.validate import check_cuts_match_supervisions
from icefall_kd.utils import write_manifest

from conftest import run_prepare

PARTS = ("train-clean-100", "dev-clean")


# --- stage stamps -------------------------------------------------------------------------

def test_folder_fingerprint_sees_added_removed_and_replaced_files(tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    (audio / "a.flac").write_bytes(b"a")
    (audio / "b.flac").write_bytes(b"b")
    stamp, unit = tmp_path / ".done", Unit("part", [audio], "opt=1")
    assert stale_units(stamp, [unit]) == {"part": "not done yet"}
    record(stamp, [unit])
    assert stale_units(stamp, [unit]) == {}  # control: nothing changed, nothing redone
    (audio / "b.flac").rename(tmp_path / "b.flac")
    assert "now holds 1 files (was 2)" in stale_units(stamp, [unit])["part"]
    (tmp_path / "b.flac").rename(audio / "b.flac")  # put back, time kept: as before
    assert stale_units(stamp, [unit]) == {}
    os.utime(audio / "a.flac", ns=(1, 1))  # replaced by another file of the same size
    assert stale_units(stamp, [unit])["part"] == f"{audio} changed"
    record(stamp, [unit])
    assert "options changed" in stale_units(stamp, [Unit("part", [audio], "opt=2")])["part"]


def test_gz_file_fingerprint_is_its_content_not_its_header(tmp_path):
    manifest = tmp_path / "m.jsonl.gz"
    with gzip.GzipFile(manifest, "wb", mtime=1) as f:
        f.write(b'{"id": "x"}\n')
    stamp, unit = tmp_path / ".done", Unit("part", [manifest])
    record(stamp, [unit])
    with gzip.GzipFile(manifest, "wb", mtime=2) as f:  # same text, other header bytes
        f.write(b'{"id": "x"}\n')
    assert stale_units(stamp, [unit]) == {}
    with gzip.GzipFile(manifest, "wb", mtime=2) as f:
        f.write(b'{"id": "y"}\n')
    assert stale_units(stamp, [unit]) == {"part": f"{manifest} changed"}
    manifest.unlink()
    assert stale_units(stamp, [unit]) == {"part": f"{manifest} is gone"}


def test_legacy_empty_marker_is_adopted_not_redone(tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    (audio / "a.flac").write_bytes(b"a")
    stamp, unit = tmp_path / ".done", Unit("part", [audio])
    stamp.touch()  # what prepare.sh wrote before stamps
    assert stale_units(stamp, [unit]) == {}
    assert adopt_legacy(stamp, [unit])
    assert not adopt_legacy(stamp, [unit])  # it is a stamp now
    (audio / "b.flac").write_bytes(b"b")
    assert "now holds 2 files" in stale_units(stamp, [unit])["part"]


def test_unreadable_stamp_is_named(tmp_path):
    stamp = tmp_path / ".fbank.done"
    stamp.write_text("not json")
    with pytest.raises(ValueError, match=r"\.fbank\.done is not a stage stamp; delete it"):
        stale_units(stamp, [Unit("part", [tmp_path])])


# --- cuts against manifests ---------------------------------------------------------------

def test_cuts_must_hold_exactly_the_manifest_utterances(prepared_tiny, tmp_path):
    data = prepared_tiny / "data"
    sups = data / "manifests" / "librispeech_supervisions_dev-clean.jsonl.gz"
    cuts = load_manifest(data / "fbank" / "librispeech_cuts_dev-clean.jsonl.gz")
    good = tmp_path / "cuts.jsonl.gz"
    write_manifest(cuts, good)
    check_cuts_match_supervisions(good, sups)  # control: the prepared cuts match
    perturbed = tmp_path / "perturbed.jsonl.gz"
    write_manifest(cuts + cuts.perturb_speed(0.9), perturbed)
    check_cuts_match_supervisions(perturbed, sups)  # _sp0.9 copies count as their source
    stale = tmp_path / "stale.jsonl.gz"
    write_manifest(CutSet.from_cuts(list(cuts)[1:]), stale)
    first = next(iter(cuts)).supervisions[0].id
    with pytest.raises(ValueError) as error:
        check_cuts_match_supervisions(stale, sups)
    message = str(error.value)
    assert str(stale) in message and str(sups) in message
    assert f"1 utterance(s) of the manifest missing from the cuts, e.g. {first}" in message
    assert "rerun ./prepare.sh" in message


# --- prepare.sh end to end ----------------------------------------------------------------

def _corpus_copy(tiny_corpus: Path, root: Path) -> Path:
    for part in PARTS:
        shutil.copytree(tiny_corpus / part, root / "LibriSpeech" / part)
    return root


def _prepare(workdir: Path, dl_dir: Path):
    result = run_prepare(workdir, "--dl-dir", str(dl_dir), "--parts", " ".join(PARTS),
                         "--vocab-sizes", "150", "--perturb-speed", "false")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _num_cuts(workdir: Path, part: str) -> int:
    return len(load_manifest(workdir / "ASR" / "data" / "fbank" / f"librispeech_cuts_{part}.jsonl.gz"))


def _differing_files(a: Path, b: Path):
    """Relative paths of files that differ between two trees, or exist in one only."""
    names = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    names |= {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    return sorted(str(n) for n in names
                  if not ((a / n).is_file() and (b / n).is_file()
                          and filecmp.cmp(a / n, b / n, shallow=False)))


LILCOM_TICK = 2.0**-5  # LilcomChunkyWriter's default precision (tick_power=-5)


def _differing_cuts(a: Path, b: Path):
    """Cut ids whose cut (all but where its features are stored) or features differ between
    two cut manifests in recipe folders' data/fbank, or that exist in one only. Features are
    compared to within a lilcom tick: the float rounding of an fbank can differ between CPUs,
    which moves a value to the neighbouring tick and changes the archive's bytes and offsets."""
    cuts_a, cuts_b = ({c.id: c.with_features_path_prefix(m.parents[2]) for c in load_manifest(m)}
                      for m in (a, b))  # feature paths are relative to the recipe folder
    differing = sorted(set(cuts_a) ^ set(cuts_b))
    for cut_id in sorted(set(cuts_a) & set(cuts_b)):
        ca, cb = cuts_a[cut_id], cuts_b[cut_id]
        da, db = ca.to_dict(), cb.to_dict()
        for d in (da, db):
            del d["features"]["storage_key"], d["features"]["storage_path"]
        fa, fb = ca.load_features(), cb.load_features()
        if da != db or fa.shape != fb.shape or np.abs(fa - fb).max() > LILCOM_TICK * 1.01:
            differing.append(cut_id)
    return differing


def _fbank_differences(fixed: Path, clean: Path):
    """What differs between two data/fbank folders: cut ids for the cut manifests, names for
    other files. Feature archives are compared through the cuts that point into them."""
    found = []
    for name in sorted({p.name for p in fixed.iterdir()} | {p.name for p in clean.iterdir()}):
        a, b = fixed / name, clean / name
        if a.is_dir() and b.is_dir() and name.startswith("feats_"):
            continue
        if name.endswith(".jsonl.gz") and a.is_file() and b.is_file():
            found += _differing_cuts(a, b)
        elif not (a.is_file() and b.is_file() and filecmp.cmp(a, b, shallow=False)):
            found.append(name)
    return found


def test_fixed_input_is_redone_downstream_and_equals_a_clean_run(tiny_corpus, tmp_path):
    dl_dir = _corpus_copy(tiny_corpus, tmp_path / "dl")
    flac = sorted((dl_dir / "LibriSpeech" / "train-clean-100").rglob("*.flac"))[0]
    flac.rename(tmp_path / flac.name)  # one train audio file missing: skipped
    _prepare(tmp_path / "fixed", dl_dir)
    total = len(list((dl_dir / "LibriSpeech" / "train-clean-100").rglob("*.flac")))
    assert _num_cuts(tmp_path / "fixed", "train-clean-100") == total

    (tmp_path / flac.name).rename(flac)  # put back; no marker deleted
    _prepare(tmp_path / "clean", dl_dir)
    fixed, clean = tmp_path / "fixed" / "ASR" / "data", tmp_path / "clean" / "ASR" / "data"
    # control: before the rerun, the comparison sees the stale train cuts
    stale = _fbank_differences(fixed / "fbank", clean / "fbank")
    assert len(stale) > 1  # cut ids are numbered in order, so the ids after the gap differ too
    assert _differing_cuts(*(d / "fbank" / "librispeech_cuts_dev-clean.jsonl.gz"
                             for d in (fixed, clean))) == []  # dev-clean was not touched

    rerun = _prepare(tmp_path / "fixed", dl_dir).stdout + ""
    assert _num_cuts(tmp_path / "fixed", "train-clean-100") == total + 1
    assert "Stage 1: lhotse manifests: train-clean-100\n" in rerun
    assert "Stage 2: fbank features: train-clean-100\n" in rerun  # dev-clean kept
    assert "Stage 3: BPE model, vocabulary 150" in rerun  # trained on the train part
    assert "Stage 4: validate" in rerun
    again = _prepare(tmp_path / "fixed", dl_dir).stdout
    assert "Stage" not in again  # control: unchanged inputs, nothing redone

    for sub in ("manifests", "lang_bpe_150"):
        assert _differing_files(fixed / sub, clean / sub) == [], sub
    assert _fbank_differences(fixed / "fbank", clean / "fbank") == []
    # control: two cuts' features swapped in the archive are seen though the manifests agree
    train = clean / "fbank" / "librispeech_cuts_train-clean-100.jsonl.gz"
    cuts = list(load_manifest(train))
    keys = [c.features.storage_key for c in cuts[:2]]
    cuts[0].features.storage_key, cuts[1].features.storage_key = keys[1], keys[0]
    swapped = train.with_name("swapped.jsonl.gz")
    write_manifest(CutSet.from_cuts(cuts), swapped)
    assert _differing_cuts(train, swapped) == sorted(c.id for c in cuts[:2])
    assert (fixed / "manifests" / "rejected_train-clean-100.txt").read_text() == ""
