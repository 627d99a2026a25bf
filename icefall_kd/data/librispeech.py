"""LibriSpeech manifests through lhotse, with the input checked first.

lhotse's own ``prepare_librispeech`` fails deep inside (an empty transcript line raises
``ValueError: not enough values to unpack``, a corrupt FLAC a libsndfile error) or silently
drops things (audio without a transcript line). Here every ``*.trans.txt`` line is checked
before lhotse's ``parse_utterance`` turns it into a Recording and a SupervisionSegment, and
every problem is reported with the file it is in and what to do about it.

Policy: ``on_bad_input="skip"`` leaves bad utterances out, logs each, counts them and writes
them to ``<output_dir>/rejected_<part>.txt``; ``"stop"`` raises :class:`BadCorpusInput` on the
first part with problems, listing them all. Manifests are written to temporary files and
renamed, so an interrupted run never leaves a manifest a later stage would take as complete.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import soundfile as sf
from lhotse import RecordingSet, SupervisionSet, fix_manifests, validate_recordings_and_supervisions
from lhotse.recipes.librispeech import parse_alignments, parse_utterance

from icefall_kd.utils import atomic_output, write_manifest

_UTTERANCE_ID = re.compile(r"^\d+-\d+-\d+$")
_TRANSCRIPT = re.compile(r"^[A-Z']+( [A-Z']+)*$")
EXPECTED_SAMPLE_RATE = 16000


class BadCorpusInput(ValueError):
    pass


@dataclass
class PartReport:
    part: str
    accepted: int = 0
    problems: List[Tuple[str, str]] = field(default_factory=list)  # (where, what to do)
    resampled: int = 0

    def reject(self, where: str, message: str) -> None:
        self.problems.append((where, message))


def _check_audio(path: Path, report: PartReport, min_seconds: float, max_seconds: float) -> bool:
    where = str(path)
    try:
        info = sf.info(str(path))
        # Decode it too: a truncated FLAC has a valid header but fails on read.
        samples, _ = sf.read(str(path), frames=min(info.frames, 16000 * 60), dtype="float32")
    except Exception as error:  # libsndfile raises several types
        report.reject(where, f"cannot read audio ({error}); re-extract or delete this file")
        return False
    if not np.isfinite(samples).all():  # float WAV/FLAC can hold them; fbank would crash
        report.reject(where, "NaN or infinite samples; re-encode the file from its source or "
                      "remove the utterance")
        return False
    if info.channels != 1:
        report.reject(where, f"{info.channels} channels; LibriSpeech audio is mono: downmix it "
                      "(e.g. sox in.flac out.flac remix -) or remove the utterance")
        return False
    duration = info.frames / info.samplerate
    if not (min_seconds <= duration <= max_seconds):
        report.reject(
            where,
            f"duration {duration:.2f} s outside [{min_seconds}, {max_seconds}] s; "
            "split or drop it, or change --min-seconds/--max-seconds",
        )
        return False
    if info.samplerate != EXPECTED_SAMPLE_RATE:
        # Documented behaviour: kept, and resampled to 16 kHz when features are computed.
        report.resampled += 1
        logging.warning(f"{where}: {info.samplerate} Hz, will be resampled to 16 kHz")
    return True


def check_part(
    part_dir: Path,
    min_seconds: float = 0.5,
    max_seconds: float = 35.0,
) -> Tuple[List[Tuple[Path, str]], PartReport]:
    """Checks one LibriSpeech part; returns the good (trans.txt, line) pairs and a report."""
    report = PartReport(part=part_dir.name)
    good: List[Tuple[Path, str]] = []
    transcribed = set()
    for trans_path in sorted(part_dir.rglob("*.trans.txt")):
        for line_number, raw in enumerate(trans_path.read_bytes().splitlines(), start=1):
            where = f"{trans_path}:{line_number}"
            line = raw.decode("utf-8", errors="replace").strip()
            if not line:
                continue  # blank lines carry nothing
            utterance_id, _, text = line.partition(" ")
            if not _UTTERANCE_ID.match(utterance_id):
                report.reject(where, f"'{utterance_id}' is not a <speaker>-<chapter>-<utt> id")
                continue
            transcribed.add(utterance_id)
            if not raw.isascii():
                report.reject(
                    where, f"non-ASCII transcript for {utterance_id}; LibriSpeech text is A-Z, ' and space"
                )
                continue
            text = " ".join(text.split())
            if not text:
                report.reject(where, f"empty transcript for {utterance_id}; add its words or remove the line")
                continue
            if not _TRANSCRIPT.match(text):
                report.reject(
                    where, f"transcript of {utterance_id} has characters other than A-Z, ' and space"
                )
                continue
            audio = trans_path.parent / f"{utterance_id}.flac"
            if not audio.is_file():
                report.reject(where, f"no audio file {audio.name} for this transcript line")
                continue
            if _check_audio(audio, report, min_seconds, max_seconds):
                good.append((trans_path, f"{utterance_id} {text}"))
    for audio in sorted(part_dir.rglob("*.flac")):
        if audio.stem not in transcribed:
            report.reject(str(audio), "audio without a transcript line; add one or remove the file")
    report.accepted = len(good)
    return good, report


def prepare_librispeech_part(
    corpus_dir: Path,
    part: str,
    output_dir: Path,
    on_bad_input: str = "skip",
    min_seconds: float = 0.5,
    max_seconds: float = 35.0,
    alignments_dir: Optional[Path] = None,
) -> PartReport:
    """Writes ``librispeech_{recordings,supervisions}_<part>.jsonl.gz`` for one part.

    Word alignments (``<speaker>-<chapter>.alignment.txt`` beside the transcripts, or under
    ``alignments_dir`` in the same layout) are attached as ``alignment["word"]``.
    """
    if on_bad_input not in ("skip", "stop"):
        raise ValueError(f"on_bad_input must be 'skip' or 'stop', not {on_bad_input!r}")
    corpus_dir, output_dir = Path(corpus_dir), Path(output_dir)
    part_dir = corpus_dir / part
    if not part_dir.is_dir():
        raise BadCorpusInput(
            f"{part_dir} does not exist. Expected LibriSpeech/<part>/<speaker>/<chapter>/...; "
            "check --dl-dir, or run the corpus stage of prepare.sh."
        )
    good, report = check_part(part_dir, min_seconds, max_seconds)
    for where, message in report.problems:
        logging.warning(f"{where}: {message}")
    if report.problems and on_bad_input == "stop":
        listing = "\n".join(f"  {w}: {m}" for w, m in report.problems)
        raise BadCorpusInput(
            f"{len(report.problems)} problem(s) in {part_dir} (use --on-bad-input skip to "
            f"leave them out):\n{listing}"
        )
    if not good:
        raise BadCorpusInput(f"No usable utterance in {part_dir}; see the warnings above.")
    alignments_root = Path(alignments_dir) if alignments_dir else corpus_dir
    recordings, supervisions = [], []
    alignment_cache: Dict[Path, dict] = {}
    for trans_path, line in good:
        ali_path = (
            alignments_root
            / trans_path.parent.relative_to(corpus_dir)
            / (trans_path.name.split(".")[0] + ".alignment.txt")
        )
        if ali_path not in alignment_cache:
            alignment_cache[ali_path] = parse_alignments(ali_path) if ali_path.exists() else {}
        recording, supervision = parse_utterance(part_dir, line, alignment_cache[ali_path])
        recordings.append(recording)
        supervisions.append(supervision)
    recording_set, supervision_set = fix_manifests(
        RecordingSet.from_recordings(recordings), SupervisionSet.from_segments(supervisions)
    )
    validate_recordings_and_supervisions(recording_set, supervision_set)
    output_dir.mkdir(parents=True, exist_ok=True)
    rejected = output_dir / f"rejected_{part}.txt"
    with atomic_output(rejected) as tmp:
        tmp.write_text("".join(f"{w}\t{m}\n" for w, m in report.problems))
    for kind, manifest in (("supervisions", supervision_set), ("recordings", recording_set)):
        write_manifest(manifest, output_dir / f"librispeech_{kind}_{part}.jsonl.gz")
    logging.info(
        f"{part}: {report.accepted} utterances, {len(report.problems)} left out "
        f"(listed in {rejected}), {report.resampled} to be resampled to 16 kHz"
    )
    return report
