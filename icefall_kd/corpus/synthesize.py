"""Write the embedded corpus in LibriSpeech's on-disk layout, with exact word times.

Layout (identical to LibriSpeech, plus word alignments in the format of the LibriSpeech
alignments that lhotse reads)::

    <out>/LibriSpeech/<part>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac   16 kHz mono
    <out>/LibriSpeech/<part>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt
    <out>/LibriSpeech/<part>/<speaker>/<chapter>/<speaker>-<chapter>.alignment.txt

Each part is written to ``<part>.partial`` and renamed when complete, so an interrupted run
never leaves a part that looks finished.
"""

from __future__ import annotations

import ctypes
import json
import logging
import multiprocessing
import re
import shutil
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import soundfile as sf

from icefall_kd.corpus import acoustics
from icefall_kd.corpus.espeak import EspeakSynthesizer
from icefall_kd.corpus.profiles import (
    CORPUS_VERSION,
    ROUGH_PARTS,
    TRAIN_PART,
    VERSION_CHANGES,
    CorpusProfile,
)
from icefall_kd.corpus.speakers import Speaker, make_speakers
from icefall_kd.corpus.text import (
    Sentence,
    assign_sentences_to_parts,
    extract_sentences,
    read_kjv_verses,
)
from icefall_kd.corpus.word_times import WordTime, word_times_from_events

SAMPLE_RATE = 16000
_SPOKEN_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


@dataclass(frozen=True)
class Utterance:
    utterance_id: str  # <speaker>-<chapter>-<utt>
    sentence: Sentence


@dataclass
class ChapterJob:
    part: str
    directory: str  # .../<part>.partial/<speaker>/<chapter>
    speaker: Speaker
    chapter_id: int
    utterances: List[Utterance]
    rough: bool
    profile: CorpusProfile
    seed: int


@dataclass
class RenderedUtterance:
    samples: np.ndarray  # float32 (num_samples,), 16 kHz
    words: List[WordTime]  # times in the rendered audio


# One synthesiser per worker process: libespeak-ng is a process-wide singleton.
_synthesizer: Optional[EspeakSynthesizer] = None


def _worker_synthesizer() -> EspeakSynthesizer:
    global _synthesizer
    if _synthesizer is None:
        _synthesizer = EspeakSynthesizer()
    return _synthesizer


def _rng_for(seed: int, *keys) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``keys`` (not on scheduling)."""
    digest = zlib.crc32("/".join(map(str, keys)).encode())
    return np.random.default_rng([seed, digest])


def render_utterance(
    synthesizer: EspeakSynthesizer,
    sentence: Sentence,
    speaker: Speaker,
    profile: CorpusProfile,
    rough: bool,
    rng: np.random.Generator,
) -> Optional[RenderedUtterance]:
    """Synthesise one sentence; ``None`` when its word times cannot be made exact."""
    spoken = sentence.spoken.lower()  # all-caps words would be spelled out as acronyms
    matches = list(_SPOKEN_WORD.finditer(spoken))
    words = [m.group().upper() for m in matches]
    if tuple(words) != sentence.words:
        raise AssertionError(f"tokenisation mismatch: {words} vs {sentence.words}")
    synthesis = synthesizer.synthesize(
        spoken, speaker.voice, speaker.words_per_minute, speaker.pitch, speaker.pitch_range
    )
    times = word_times_from_events(
        words,
        [m.start() for m in matches],
        synthesis.events,
        lambda word: len(synthesizer.phonemes(word.lower())),
    )
    if times is None:
        return None
    audio = acoustics.resample(synthesis.samples, synthesis.sample_rate, SAMPLE_RATE)
    # Keep from the first word's onset to the last word's end; add fresh silence around it.
    # Silences are whole milliseconds, so word times stay exact to the millisecond.
    lead = round(rng.uniform(*profile.lead_silence), 3)
    trail = round(rng.uniform(*profile.trail_silence), 3)
    first, last = times[0].start, times[-1].end
    speech = audio[int(round(first * SAMPLE_RATE)) : int(round(last * SAMPLE_RATE))]
    samples = np.concatenate(
        [
            np.zeros(int(round(lead * SAMPLE_RATE)), np.float32),
            speech,
            np.zeros(int(round(trail * SAMPLE_RATE)), np.float32),
        ]
    )
    speech_rms = float(np.sqrt(np.mean(speech**2))) + 1e-8
    if rough and profile.rough_rt60 is not None:
        samples = acoustics.reverberate(rng, samples, SAMPLE_RATE, rng.uniform(*profile.rough_rt60))
    snr_range = profile.rough_snr_db if rough and profile.rough_snr_db else profile.floor_snr_db
    samples = acoustics.add_noise(rng, samples, rng.uniform(*snr_range), speech_rms)
    samples *= rng.uniform(0.3, 0.9) / (np.max(np.abs(samples)) + 1e-8)  # varied gain, no clipping
    shift = lead - first
    shifted = [
        WordTime(t.word, round(t.start + shift, 3), round(t.end + shift, 3)) for t in times
    ]
    return RenderedUtterance(samples=samples.astype(np.float32), words=shifted)


def alignment_line(utterance_id: str, words: Sequence[WordTime], duration: float) -> str:
    """One line of a LibriSpeech ``.alignment.txt``: words (``""`` = silence) and end times."""
    symbols: List[str] = []
    ends: List[float] = []
    previous_end = 0.0
    for word in words:
        if word.start > previous_end + 1e-6:
            symbols.append("")
            ends.append(word.start)
        symbols.append(word.word)
        ends.append(word.end)
        previous_end = word.end
    if duration > previous_end + 1e-6:
        symbols.append("")
        ends.append(duration)
    return '{} "{}" "{}"'.format(
        utterance_id, ",".join(symbols), ",".join(f"{end:.3f}" for end in ends)
    )


def _write_chapter(job: ChapterJob) -> dict:
    # espeak-ng carries waveform state from one utterance to the next and draws from libc's
    # rand(): each chapter runs in a fresh process (maxtasksperchild=1) with a seeded rand(),
    # so its audio depends only on the seed, never on which worker ran what before.
    ctypes.CDLL(None).srand(zlib.crc32(f"{job.seed}/{job.part}/{job.chapter_id}".encode()))
    synthesizer = _worker_synthesizer()
    directory = Path(job.directory)
    directory.mkdir(parents=True, exist_ok=True)
    transcript_lines, alignment_lines = [], []
    stats = {"utterances": 0, "seconds": 0.0, "speech_seconds": 0.0, "words": 0, "inexact": 0}
    for utterance in job.utterances:
        rng = _rng_for(job.seed, job.part, utterance.utterance_id)
        rendered = render_utterance(
            synthesizer, utterance.sentence, job.speaker, job.profile, job.rough, rng
        )
        if rendered is None:
            stats["inexact"] += 1
            continue
        sf.write(
            directory / f"{utterance.utterance_id}.flac",
            rendered.samples,
            SAMPLE_RATE,
            format="FLAC",
            subtype="PCM_16",
        )
        duration = len(rendered.samples) / SAMPLE_RATE
        transcript_lines.append(f"{utterance.utterance_id} {' '.join(utterance.sentence.words)}")
        alignment_lines.append(alignment_line(utterance.utterance_id, rendered.words, duration))
        stats["utterances"] += 1
        stats["seconds"] += duration
        stats["speech_seconds"] += rendered.words[-1].end - rendered.words[0].start
        stats["words"] += len(rendered.words)
    stem = f"{job.speaker.speaker_id}-{job.chapter_id}"
    (directory / f"{stem}.trans.txt").write_text("\n".join(transcript_lines) + "\n")
    (directory / f"{stem}.alignment.txt").write_text("\n".join(alignment_lines) + "\n")
    return stats


def plan_chapters(
    part: str,
    sentences: Sequence[Sentence],
    speakers: Sequence[Speaker],
    profile: CorpusProfile,
    part_dir: Path,
    seed: int,
) -> List[ChapterJob]:
    """Deal sentences to speakers in turn, then cut each speaker's share into chapters."""
    per_speaker: Dict[int, List[Sentence]] = {s.speaker_id: [] for s in speakers}
    for index, sentence in enumerate(sentences):
        per_speaker[speakers[index % len(speakers)].speaker_id].append(sentence)
    jobs = []
    for speaker in speakers:
        own = per_speaker[speaker.speaker_id]
        size = profile.utterances_per_chapter
        for chapter_index, begin in enumerate(range(0, len(own), size)):
            chapter_id = speaker.speaker_id * 100 + chapter_index
            utterances = [
                Utterance(f"{speaker.speaker_id}-{chapter_id}-{k:04d}", sentence)
                for k, sentence in enumerate(own[begin : begin + size])
            ]
            jobs.append(
                ChapterJob(
                    part=part,
                    directory=str(part_dir / str(speaker.speaker_id) / str(chapter_id)),
                    speaker=speaker,
                    chapter_id=chapter_id,
                    utterances=utterances,
                    rough=part in ROUGH_PARTS,
                    profile=profile,
                    seed=seed,
                )
            )
    return jobs


def check_corpus_version(corpus_dir: Path, summary_path: Path, profile: CorpusProfile) -> dict:
    """The summary of the parts already in ``corpus_dir`` ({} if none); refuses parts written
    by another version of the corpus, which would silently mix two corpora."""
    existing = [part for part in profile.parts if (corpus_dir / part).is_dir()]
    if not existing:
        return {}
    previous = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    version = previous.get("corpus_version", 1)
    if version != CORPUS_VERSION:
        raise SystemExit(
            f"{corpus_dir} holds parts ({', '.join(existing)}) of version {version} of the "
            f"embedded corpus; this code writes version {CORPUS_VERSION} "
            f"({VERSION_CHANGES[CORPUS_VERSION]}). Delete {corpus_dir.parent} and the "
            "recipe's data/ folder, then run prepare.sh again."
        )
    return previous


def kept_part_stats(previous: dict, regenerated: Dict[str, dict]) -> Dict[str, dict]:
    """Statistics of the parts of an earlier run that this run kept, each with its jobs."""
    return {part: {"num_jobs": previous.get("num_jobs"), **part_stats}
            for part, part_stats in previous.get("parts", {}).items() if part not in regenerated}


def synthesize_corpus(
    output_dir: Path,
    profile: CorpusProfile,
    seed: int = 42,
    num_jobs: int = 2,
) -> Dict[str, dict]:
    """Generate every part of ``profile`` under ``output_dir/LibriSpeech``.

    Parts already complete (a directory without the ``.partial`` suffix) are kept, so an
    interrupted run resumes part by part. Returns per-part statistics, also written to
    ``output_dir/tts-corpus-<profile>.json``.
    """
    corpus_dir = Path(output_dir) / "LibriSpeech"
    summary_path = Path(output_dir) / f"tts-corpus-{profile.name}.json"
    previous = check_corpus_version(corpus_dir, summary_path, profile)
    corpus_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    sentences = extract_sentences(read_kjv_verses(), profile.min_words, profile.max_words)
    parts = assign_sentences_to_parts(sentences, profile.sentences, TRAIN_PART, seed)
    speakers = make_speakers(profile.speakers, list(ROUGH_PARTS), seed)
    stats: Dict[str, dict] = {}
    # forkserver: workers fork from a clean server process, never from a caller that may
    # have initialised libespeak-ng itself.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    for part in profile.parts:
        final_dir = corpus_dir / part
        if final_dir.is_dir():
            logging.info(f"{final_dir} exists, keeping it (delete it to regenerate)")
            continue
        partial_dir = corpus_dir / f"{part}.partial"
        shutil.rmtree(partial_dir, ignore_errors=True)  # leftovers of an interrupted run
        jobs = plan_chapters(part, parts[part], speakers[part], profile, partial_dir, seed)
        part_started = time.time()
        with context.Pool(num_jobs, maxtasksperchild=1) as pool:
            chapter_stats = pool.map(_write_chapter, jobs, chunksize=1)
        totals = {key: sum(s[key] for s in chapter_stats) for key in chapter_stats[0]}
        totals["speakers"] = len(speakers[part])
        totals["hours"] = totals["seconds"] / 3600
        totals["words_per_second_of_speech"] = totals["words"] / max(totals["speech_seconds"], 1e-9)
        totals["wall_seconds"] = time.time() - part_started
        totals["num_jobs"] = num_jobs
        partial_dir.rename(final_dir)
        stats[part] = totals
        logging.info(
            f"{part}: {totals['utterances']} utterances, {totals['hours']:.2f} h, "
            f"{totals['speakers']} speakers, {totals['inexact']} sentences left out "
            f"(word times not exact), {totals['wall_seconds']:.1f} s"
        )
    summary = {
        "corpus_version": CORPUS_VERSION,
        "profile": asdict(profile),
        "seed": seed,
        "source_sentences": len(sentences),
        "speakers": {p: [asdict(s) for s in v] for p, v in speakers.items()},
        # Parts kept from an earlier run keep their statistics (and the jobs that wrote them).
        "parts": {**kept_part_stats(previous, stats), **stats},
        # The time the corpus as it now stands took: this run's, plus that of the kept parts.
        "wall_seconds": time.time() - started + previous.get("wall_seconds", 0.0) - sum(
            s["wall_seconds"] for p, s in previous.get("parts", {}).items() if p in stats),
        "num_jobs": num_jobs,
    }
    if stats:
        tmp = summary_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(summary, indent=2))
        tmp.replace(summary_path)
    return stats
