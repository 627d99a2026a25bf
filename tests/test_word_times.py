"""Exact word times: the splitting logic on hand-made events, and the times against audio."""

import numpy as np
import pytest
import soundfile as sf
from lhotse.recipes.librispeech import parse_alignments

from icefall_kd.corpus.espeak import SynthEvent
from icefall_kd.corpus.word_times import word_times_from_events


def _events(spec):
    """spec: list of ("w", char) / ("p", name, seconds) / ("end", seconds)."""
    events = []
    for item in spec:
        if item[0] == "w":
            events.append(SynthEvent("word", item[1], item[2]))
        elif item[0] == "p":
            events.append(SynthEvent("phoneme", 0, item[2], item[1]))
        else:
            events.append(SynthEvent("end", 0, item[1]))
    return events


COUNTS = {"THERE": 2, "BE": 2, "LIGHT": 3, "FOR": 2, "A": 1}


def test_one_event_per_word():
    words, starts = ["LET", "LIGHT"], [0, 4]
    ev = _events([("w", 0, 0.0), ("p", "l", 0.01), ("p", "E", 0.1), ("p", "t", 0.2),
                  ("p", "_", 0.3), ("w", 4, 0.35), ("p", "l", 0.4), ("p", "aI", 0.5),
                  ("p", "t", 0.6), ("end", 0.7)])
    times = word_times_from_events(words, starts, ev, COUNTS.get)
    assert [(t.start, t.end) for t in times] == [(0.01, 0.3), (0.4, 0.7)]


def test_merged_unit_is_split_at_the_second_words_first_phoneme():
    # espeak speaks "there be" as one unit with one WORD event.
    words, starts = ["THERE", "BE"], [0, 6]
    ev = _events([("w", 0, 0.0), ("p", "D", 0.02), ("p", "e@", 0.08), ("p", "b", 0.25),
                  ("p", "i:", 0.35), ("end", 0.5)])
    times = word_times_from_events(words, starts, ev, COUNTS.get)
    assert [(t.word, t.start, t.end) for t in times] == [("THERE", 0.02, 0.25), ("BE", 0.25, 0.5)]


def test_linking_r_belongs_to_no_word_alone():
    words, starts = ["FOR", "A"], [0, 4]
    ev = _events([("w", 0, 0.0), ("p", "f", 0.0), ("p", "3", 0.1), ("p", "r-", 0.2),
                  ("p", "@", 0.25), ("end", 0.3)])
    times = word_times_from_events(words, starts, ev, COUNTS.get)
    assert [(t.start, t.end) for t in times] == [(0.0, 0.25), (0.25, 0.3)]


def test_unsplittable_unit_gives_none_not_a_guess():
    words, starts = ["THERE", "BE"], [0, 6]
    ev = _events([("w", 0, 0.0), ("p", "D", 0.02), ("p", "e@", 0.08), ("p", "b", 0.25),
                  ("end", 0.5)])
    assert word_times_from_events(words, starts, ev, COUNTS.get) is None


def _frame_energy_db(samples, frame=160):
    frames = samples[: len(samples) // frame * frame].reshape(-1, frame)
    energy = np.sqrt(np.mean(frames**2, axis=1)) + 1e-9
    return 20 * np.log10(energy / energy.max())


@pytest.mark.parametrize("part", ["dev-clean", "test-clean", "train-clean-100"])
def test_speech_starts_at_first_word_and_words_are_not_silent(tiny_corpus, part):
    """Independent truth: the audio itself. Speech energy (> -35 dB of the peak) must begin
    within 30 ms of the first word's start, nothing before it, and every word must contain
    speech."""
    checked = 0
    for ali_path in (tiny_corpus / part).rglob("*.alignment.txt"):
        for utt, items in parse_alignments(ali_path).items():
            audio = ali_path.parent / f"{utt}.flac"
            samples, rate = sf.read(str(audio), dtype="float32")
            energy = _frame_energy_db(samples)
            words = [i for i in items if i.symbol]
            onset = np.argmax(energy > -35) * 0.01
            assert abs(onset - words[0].start) <= 0.03, (utt, onset, words[0].start)
            for word in words:
                inside = energy[int(word.start * 100) : int(np.ceil(word.end * 100))]
                assert inside.max() > -30, (utt, word)
            assert abs(items[-1].end - len(samples) / rate) < 2e-3
            checked += 1
    assert checked > 0
