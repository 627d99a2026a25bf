"""Each kind of bad corpus input gives a clear message naming the file, is skipped and
counted (default) or stops preparation, and never leaves a half-written manifest."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from lhotse import load_manifest

from icefall_kd.data import librispeech
from icefall_kd.data.librispeech import BadCorpusInput, prepare_librispeech_part

PART = "dev-clean"


@pytest.fixture
def corpus(tiny_corpus, tmp_path) -> Path:
    root = tmp_path / "LibriSpeech"
    shutil.copytree(tiny_corpus / PART, root / PART)
    return root


def _first_chapter(corpus: Path):
    trans = sorted((corpus / PART).rglob("*.trans.txt"))[0]
    lines = trans.read_text().splitlines()
    return trans, lines


def _good_count(corpus: Path) -> int:
    return len(list((corpus / PART).rglob("*.flac")))


def _break_missing_audio(corpus):
    trans, lines = _first_chapter(corpus)
    utt = lines[0].split()[0]
    (trans.parent / f"{utt}.flac").unlink()
    return utt, "no audio file"


def _break_corrupt_audio(corpus):
    trans, lines = _first_chapter(corpus)
    utt = lines[0].split()[0]
    flac = trans.parent / f"{utt}.flac"
    flac.write_bytes(flac.read_bytes()[:200])  # truncated mid-stream
    return utt, "cannot read audio"


def _break_empty_transcript(corpus):
    trans, lines = _first_chapter(corpus)
    utt = lines[0].split()[0]
    trans.write_text("\n".join([utt] + lines[1:]) + "\n")
    return utt, "empty transcript"


def _break_non_ascii_transcript(corpus):
    trans, lines = _first_chapter(corpus)
    utt = lines[0].split()[0]
    trans.write_text("\n".join([f"{utt} CAFÉ AU LAIT"] + lines[1:]) + "\n")
    return utt, "non-ASCII"


def _break_lower_case_transcript(corpus):
    trans, lines = _first_chapter(corpus)
    utt, text = lines[0].split(" ", 1)
    trans.write_text("\n".join([f"{utt} {text.lower()}"] + lines[1:]) + "\n")
    return utt, "characters other than A-Z"


def _break_too_short(corpus):
    trans, lines = _first_chapter(corpus)
    utt = lines[0].split()[0]
    sf.write(trans.parent / f"{utt}.flac", np.zeros(1600, np.float32), 16000)
    return utt, "duration 0.10 s outside"


def _break_too_long(corpus):
    trans, lines = _first_chapter(corpus)
    utt = lines[0].split()[0]
    sf.write(trans.parent / f"{utt}.flac", np.zeros(16000 * 40, np.float32), 16000)
    return utt, "duration 40.00 s outside"


def _break_audio_without_transcript(corpus):
    trans, lines = _first_chapter(corpus)
    utt = lines[0].split()[0]
    trans.write_text("\n".join(lines[1:]) + "\n")
    return utt, "audio without a transcript line"


def _break_nan_audio(corpus):
    trans, lines = _first_chapter(corpus)
    utt = lines[0].split()[0]
    audio = np.full(16000 * 2, 0.1, np.float32)
    audio[1000] = np.nan
    # Float samples can hold NaN; libsndfile reads the file by its content, whatever its name.
    sf.write(trans.parent / f"{utt}.flac", audio, 16000, format="WAV", subtype="FLOAT")
    return utt, "NaN or infinite samples"


def _break_stereo_audio(corpus):
    trans, lines = _first_chapter(corpus)
    utt = lines[0].split()[0]
    sf.write(trans.parent / f"{utt}.flac", np.zeros((16000 * 2, 2), np.float32), 16000)
    return utt, "2 channels; LibriSpeech audio is mono: downmix it"


BREAKERS = [
    _break_missing_audio, _break_corrupt_audio, _break_empty_transcript,
    _break_non_ascii_transcript, _break_lower_case_transcript, _break_too_short,
    _break_too_long, _break_audio_without_transcript, _break_nan_audio, _break_stereo_audio,
]


@pytest.mark.parametrize("breaker", BREAKERS, ids=lambda f: f.__name__[7:])
def test_bad_input_is_skipped_counted_and_named(corpus, tmp_path, breaker):
    total = _good_count(corpus)
    utt, message = breaker(corpus)
    out = tmp_path / "manifests"
    report = prepare_librispeech_part(corpus, PART, out, on_bad_input="skip")
    assert len(report.problems) == 1
    where, what = report.problems[0]
    assert utt in where or utt in what or utt in Path(where).name
    assert message in what
    sups = load_manifest(out / f"librispeech_supervisions_{PART}.jsonl.gz")
    assert utt not in {s.id for s in sups}
    assert len(sups) == total - 1
    assert message in (out / f"rejected_{PART}.txt").read_text()


@pytest.mark.parametrize("breaker", BREAKERS, ids=lambda f: f.__name__[7:])
def test_bad_input_stops_with_a_listing_when_asked(corpus, tmp_path, breaker):
    utt, message = breaker(corpus)
    out = tmp_path / "manifests"
    with pytest.raises(BadCorpusInput) as error:
        prepare_librispeech_part(corpus, PART, out, on_bad_input="stop")
    assert message in str(error.value) and "--on-bad-input skip" in str(error.value)
    assert not out.exists() or not list(out.glob("*.jsonl.gz"))


def test_wrong_sample_rate_is_kept_and_resampled_to_16k(corpus, tmp_path):
    from icefall_kd.data.fbank import compute_fbank_for_part

    trans, lines = _first_chapter(corpus)
    utt = lines[0].split()[0]
    flac = trans.parent / f"{utt}.flac"
    samples, rate = sf.read(str(flac), dtype="float32")
    from icefall_kd.corpus.acoustics import resample

    sf.write(flac, resample(samples, 16000, 22050), 22050)
    out = tmp_path / "manifests"
    report = prepare_librispeech_part(corpus, PART, out)
    assert report.resampled == 1 and not report.problems
    cuts_path = tmp_path / "cuts.jsonl.gz"
    compute_fbank_for_part(out / f"librispeech_recordings_{PART}.jsonl.gz",
                           out / f"librispeech_supervisions_{PART}.jsonl.gz",
                           cuts_path, tmp_path / "feats", num_jobs=1)
    cut = [c for c in load_manifest(cuts_path) if c.id.startswith(utt)][0]
    assert cut.sampling_rate == 16000
    assert abs(cut.num_frames - round(len(samples) / 160)) <= 1


def test_missing_part_names_the_folder(tmp_path):
    with pytest.raises(BadCorpusInput, match="dev-other does not exist"):
        prepare_librispeech_part(tmp_path, "dev-other", tmp_path / "out")


def test_interrupted_write_leaves_no_manifest_and_rerun_gives_same_result(
    corpus, tmp_path, monkeypatch
):
    out = tmp_path / "manifests"
    real_to_dicts = librispeech.RecordingSet.to_dicts

    def crash(self):
        yield from real_to_dicts(self)  # the temporary file is fully written ...
        raise KeyboardInterrupt  # ... and then the job is killed before the rename

    monkeypatch.setattr(librispeech.RecordingSet, "to_dicts", crash)
    with pytest.raises(KeyboardInterrupt):
        prepare_librispeech_part(corpus, PART, out)
    assert not (out / f"librispeech_recordings_{PART}.jsonl.gz").exists()
    assert not [p for p in out.iterdir() if ".tmp" in p.name]
    monkeypatch.undo()
    prepare_librispeech_part(corpus, PART, out)
    reference = tmp_path / "reference"
    prepare_librispeech_part(corpus, PART, reference)
    for name in (f"librispeech_recordings_{PART}.jsonl.gz", f"librispeech_supervisions_{PART}.jsonl.gz"):
        assert list(load_manifest(out / name)) == list(load_manifest(reference / name))
