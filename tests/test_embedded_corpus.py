"""The embedded corpus: LibriSpeech layout, disjoint parts, speaking rate, determinism."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from icefall_kd.corpus.profiles import (
    CORPUS_VERSION,
    EVAL_PARTS,
    PROFILES,
    ROUGH_PARTS,
    TRAIN_PART,
    get_profile,
)
from icefall_kd.corpus.speakers import make_speakers
from icefall_kd.corpus.synthesize import synthesize_corpus


def _transcripts(part_dir: Path) -> dict:
    lines = {}
    for trans in part_dir.rglob("*.trans.txt"):
        for line in trans.read_text().splitlines():
            utt, text = line.split(" ", 1)
            lines[utt] = text
    return lines


def test_layout_matches_librispeech(tiny_corpus):
    profile = get_profile("tiny")
    assert sorted(p.name for p in tiny_corpus.iterdir()) == sorted(profile.parts)
    for part in profile.parts:
        transcripts = _transcripts(tiny_corpus / part)
        assert len(transcripts) > 0
        for utt, text in transcripts.items():
            speaker, chapter, index = utt.split("-")
            assert re.fullmatch(r"\d+", speaker) and re.fullmatch(r"\d+", chapter)
            assert re.fullmatch(r"\d{4}", index)
            flac = tiny_corpus / part / speaker / chapter / f"{utt}.flac"
            assert flac.is_file(), flac
            trans = tiny_corpus / part / speaker / chapter / f"{speaker}-{chapter}.trans.txt"
            assert trans.is_file()
            assert re.fullmatch(r"[A-Z']+( [A-Z']+)*", text), text
            assert profile.min_words <= len(text.split()) <= profile.max_words
        for flac in (tiny_corpus / part).rglob("*.flac"):
            info = sf.info(str(flac))
            assert (info.samplerate, info.channels, info.format) == (16000, 1, "FLAC")
            assert flac.stem in transcripts


def test_speakers_and_sentences_are_disjoint_across_parts(tiny_corpus):
    speakers, sentences = {}, {}
    for part in get_profile("tiny").parts:
        transcripts = _transcripts(tiny_corpus / part)
        speakers[part] = {utt.split("-")[0] for utt in transcripts}
        sentences[part] = set(transcripts.values())
    parts = list(speakers)
    for i, a in enumerate(parts):
        for b in parts[i + 1 :]:
            assert not speakers[a] & speakers[b], (a, b)
            assert not sentences[a] & sentences[b], (a, b)
    assert sum(len(s) for s in speakers.values()) >= 24
    # Every evaluation word was heard in training.
    train_words = {w for s in sentences[TRAIN_PART] for w in s.split()}
    for part in EVAL_PARTS:
        assert {w for s in sentences[part] for w in s.split()} <= train_words


def test_voices_never_repeat_across_parts():
    for profile in PROFILES.values():
        speakers = make_speakers(profile.speakers, list(ROUGH_PARTS), seed=1)
        voices = [s.voice for part in speakers.values() for s in part]
        assert len(voices) == len(set(voices)) >= 24
        assert all("+" in v for v in voices)


def test_speaking_rate_is_read_speech_not_espeak_default(tiny_corpus):
    words = seconds = 0.0
    for ali in (tiny_corpus / TRAIN_PART).rglob("*.alignment.txt"):
        for line in ali.read_text().splitlines():
            _, symbols, ends = line.split()
            symbols = symbols.strip('"').split(",")
            ends = [0.0] + [float(e) for e in ends.strip('"').split(",")]
            spoken = [i for i, s in enumerate(symbols) if s]
            words += len(spoken)
            seconds += ends[spoken[-1] + 1] - ends[spoken[0]]
    assert 2.4 <= words / seconds <= 3.3, words / seconds


def test_silence_is_trimmed(tiny_corpus):
    for ali in list((tiny_corpus / TRAIN_PART).rglob("*.alignment.txt"))[:3]:
        for line in ali.read_text().splitlines():
            _, symbols, ends = line.split()
            symbols = symbols.strip('"').split(",")
            ends = [float(e) for e in ends.strip('"').split(",")]
            assert symbols[0] == "" and symbols[-1] == ""
            lead, trail = ends[0], ends[-1] - ends[-2]
            assert 0.1 <= lead <= 0.4 and 0.1 <= trail <= 0.4


def test_same_seed_same_corpus_other_seed_other_corpus(tmp_path):
    from dataclasses import replace

    small = replace(get_profile("tiny"), name="small",
                    sentences={TRAIN_PART: 12, "dev-clean": 2, "test-clean": 2, "test-other": 2})
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        synthesize_corpus(tmp_path / name, small, seed=seed, num_jobs=2)

    def digest(root):
        files = sorted((root / "LibriSpeech").rglob("*.*"))
        return {str(f.relative_to(root)): f.read_bytes() for f in files}

    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def _floor_db(part_dir: Path) -> float:
    """Median over utterances of the quietest 10 ms frames' level against the loudest."""
    ratios = []
    for flac in part_dir.rglob("*.flac"):
        x, _ = sf.read(str(flac), dtype="float32")
        frames = x[: len(x) // 160 * 160].reshape(-1, 160)
        energy = np.sqrt(np.mean(frames**2, axis=1)) + 1e-9
        ratios.append(20 * np.log10(np.percentile(energy, 5) / energy.max()))
    return float(np.median(ratios))


def test_test_other_has_the_room_only_when_the_profile_asks(tiny_corpus, tmp_path):
    """By default test-other differs by its voices, not by noise (LibriSpeech's "other");
    a profile with a room adds reverberation and noise, and its quietest frames get louder."""
    from dataclasses import replace

    assert abs(_floor_db(tiny_corpus / "test-other") - _floor_db(tiny_corpus / "test-clean")) < 10
    noisy = replace(get_profile("tiny"), name="noisy", rough_rt60=(0.3, 0.7),
                    rough_snr_db=(5.0, 15.0), parts=("test-clean", "test-other"))
    synthesize_corpus(tmp_path, noisy, seed=3, num_jobs=2)
    corpus = tmp_path / "LibriSpeech"
    assert _floor_db(corpus / "test-other") > _floor_db(corpus / "test-clean") + 15


def test_parts_of_another_corpus_version_are_refused_and_kept_parts_keep_their_stats(tmp_path):
    from dataclasses import replace

    small = replace(get_profile("tiny"), name="small", parts=("dev-clean",),
                    sentences={TRAIN_PART: 12, "dev-clean": 2, "test-clean": 2, "test-other": 2})
    synthesize_corpus(tmp_path, small, seed=7, num_jobs=1)
    both = replace(small, parts=("dev-clean", "test-clean"))
    synthesize_corpus(tmp_path, both, seed=7, num_jobs=1)  # keeps dev-clean, adds test-clean
    summary_path = tmp_path / "tts-corpus-small.json"
    summary = json.loads(summary_path.read_text())
    assert set(summary["parts"]) == {"dev-clean", "test-clean"}
    assert all(p["num_jobs"] == 1 for p in summary["parts"].values())
    assert summary["corpus_version"] == CORPUS_VERSION

    del summary["corpus_version"]  # what version 1 wrote
    summary_path.write_text(json.dumps(summary))
    with pytest.raises(SystemExit, match="version 1 of the embedded corpus"):
        synthesize_corpus(tmp_path, both, seed=7, num_jobs=1)


def _version_2_default():
    """The default profile as corpus version 2 wrote it (smaller evaluation parts)."""
    from dataclasses import replace

    return replace(
        get_profile("default"),
        sentences={TRAIN_PART: 12000, "dev-clean": 300, "test-clean": 400, "test-other": 400},
        speakers={TRAIN_PART: 40, "dev-clean": 4, "test-clean": 6, "test-other": 6},
    )


def _plan(profile, part, seed=42):
    from icefall_kd.corpus.synthesize import plan_chapters
    from icefall_kd.corpus.text import assign_sentences_to_parts, extract_sentences, read_kjv_verses

    sentences = extract_sentences(read_kjv_verses(), profile.min_words, profile.max_words)
    parts = assign_sentences_to_parts(sentences, profile.sentences, TRAIN_PART, seed)
    speakers = make_speakers(profile.speakers, list(ROUGH_PARTS), seed)
    return plan_chapters(part, parts[part], speakers[part], profile, Path("unused"), seed)


def _plan_digest(jobs) -> str:
    import hashlib

    digest = hashlib.sha256()
    for job in jobs:
        s = job.speaker
        for u in job.utterances:
            digest.update(
                f"{u.utterance_id}|{s.voice}|{s.pitch}|{s.pitch_range}|{s.words_per_minute}|"
                f"{u.sentence.spoken}|{' '.join(u.sentence.words)}\n".encode()
            )
    return digest.hexdigest()


def test_larger_evaluation_parts_leave_the_training_part_unchanged(tmp_path):
    """Corpus version 3 only enlarged dev/test: the training part's sentences, utterance ids and
    voices are those of version 2 (the digest was computed from version 2's plan, which matched
    the transcripts and speakers of a version-2 corpus on disk), and its audio too (the first
    chapter synthesised under both profiles, each in a fresh process, as synthesis does)."""
    import multiprocessing

    from icefall_kd.corpus import synthesize

    current, version_2 = get_profile("default"), _version_2_default()
    train_jobs = _plan(current, TRAIN_PART)
    assert _plan_digest(train_jobs) == (
        "200cd9386d53a68b30256beecb3ef359ce5d79ab4da05093f20104688176848a")
    # Control: the plan digest sees a change of the evaluation parts.
    assert _plan_digest(_plan(current, "dev-clean")) != _plan_digest(_plan(version_2, "dev-clean"))

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([synthesize.__name__])
    audio = []
    for name, profile, seed in (("v3", current, 42), ("v2", version_2, 42), ("control", current, 7)):
        job = _plan(profile, TRAIN_PART)[0]
        job.directory, job.seed = str(tmp_path / name), seed
        with context.Pool(1, maxtasksperchild=1) as pool:
            pool.map(synthesize._write_chapter, [job])
        audio.append([sf.read(f, dtype="int16")[0] for f in sorted((tmp_path / name).glob("*.flac"))])
    assert len(audio[0]) == len(audio[1]) > 30
    same = [np.array_equal(a, b) for a, b in zip(audio[0], audio[1])]
    assert all(same)
    # Control: the same chapter with another synthesis seed (noise, gain, silences) differs.
    assert not any(np.array_equal(a, b) for a, b in zip(audio[0], audio[2]))


def test_default_evaluation_parts_are_large_enough_for_the_study():
    """Issue 17's floor after the ~0.3% of sentences synthesis leaves out: 2,000 test
    utterances from 20 speakers each, 1,000 dev-clean from 10."""
    profile = get_profile("default")
    for part, (utterances, speakers) in {"dev-clean": (1000, 10), "test-clean": (2000, 20),
                                         "test-other": (2000, 20)}.items():
        assert profile.sentences[part] * 0.99 >= utterances
        assert profile.speakers[part] >= speakers
