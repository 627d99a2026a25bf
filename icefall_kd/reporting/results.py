"""Collect decoding outputs (icefall's wer-summary files) and corpus statistics for
RESULTS.md, so that every figure there is regenerated from files, never typed."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import sentencepiece as spm
from lhotse import load_manifest_lazy

from icefall_kd.reporting.result_key import ResultKey


def parse_result_name(path: Path, kind: str) -> Tuple[str, ResultKey]:
    """(test set, key) of a file named ``<kind>-<test set>-<suffix>.<ext>`` (kind e.g.
    "wer-summary"); ValueError, naming the file, for a name the decoders would not write."""
    match = re.fullmatch(re.escape(kind) + r"-(?P<test_set>[a-z]+-[a-z]+)-(?P<suffix>.+)\.[a-z]+",
                         path.name)
    if match is None:
        raise ValueError(f"{path}: not a {kind}-<test set>-<suffix> file name")
    try:
        return match.group("test_set"), ResultKey.parse(match.group("suffix"))
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


@dataclass(frozen=True)
class DecodeKey:
    exp_dir: str
    method: str  # the result folder: greedy_search or modified_beam_search
    result: ResultKey  # the settings the file names record
    chunkwise: bool  # streaming_decode.py (audio, chunk by chunk) rather than decode.py

    @property
    def suffix(self) -> str:
        return self.result.to_suffix()

    @property
    def res_dir(self) -> Path:
        return Path(self.exp_dir) / ("streaming" if self.chunkwise else "") / self.method


def collect_wers(exp_dirs: List[Path]) -> Dict[DecodeKey, Dict[str, float]]:
    """{key: {test set: WER %}} from every wer-summary file of decode.py
    (<exp>/<method>/) and streaming_decode.py (<exp>/streaming/<method>/)."""
    table: Dict[DecodeKey, Dict[str, float]] = {}
    for exp_dir in exp_dirs:
        for pattern, chunkwise in (("*/wer-summary-*.txt", False),
                                   ("streaming/*/wer-summary-*.txt", True)):
            for path in sorted(Path(exp_dir).glob(pattern)):
                test_set, result = parse_result_name(path, "wer-summary")
                wer = float(path.read_text().splitlines()[1].split("\t")[1])
                key = DecodeKey(str(exp_dir), path.parent.name, result, chunkwise)
                table.setdefault(key, {})[test_set] = wer
    return table


def without_dev_only(table: Dict[DecodeKey, Dict[str, float]],
                     dev_set: str = "dev-clean") -> Dict[DecodeKey, Dict[str, float]]:
    """``table`` less the decodes of ``dev_set`` alone: learning-curve points
    (local/train_until_converged.py, run in a folder of run.sh's to draw its curve), which
    are not a model's rows. run.sh decodes the test sets beside dev."""
    return {key: wers for key, wers in table.items() if set(wers) != {dev_set}}


def read_latency(key: DecodeKey, test_set: str) -> Optional[dict]:
    path = key.res_dir / f"latency-{test_set}-{key.suffix}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def read_hyps(key: DecodeKey, test_set: str) -> Dict[str, str]:
    """{cut id: hypothesis line} from a recogs- file."""
    path = key.res_dir / f"recogs-{test_set}-{key.suffix}.txt"
    hyps = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            cut_id, _, rest = line.partition(":\t")
            if rest.startswith("hyp="):
                hyps[cut_id] = rest[4:]
    return hyps


def identical_share(a: Dict[str, str], b: Dict[str, str]) -> Optional[float]:
    common = set(a) & set(b)
    if not common:
        return None
    return sum(a[k] == b[k] for k in common) / len(common)


def token_rate_statistics(supervisions_path: Path, sp: spm.SentencePieceProcessor,
                          frame_seconds: float = 0.04) -> Dict[str, float]:
    """How many BPE tokens per 40 ms encoder frame the speech needs, from exact word times.

    Returns the mean over utterances of tokens per frame of speech (first word start to last
    word end), and the share of words with more tokens than frames (those words cannot be
    emitted with one symbol per frame unless tokens spill into neighbouring frames).
    """
    rates, words, dense_words = [], 0, 0
    for sup in load_manifest_lazy(supervisions_path):
        aligned = [w for w in (sup.alignment or {}).get("word", []) if w.symbol]
        if not aligned:
            continue
        tokens = len(sp.encode(sup.text))
        speech = aligned[-1].end - aligned[0].start
        rates.append(tokens / max(speech / frame_seconds, 1.0))
        for w in aligned:
            words += 1
            if len(sp.encode(w.symbol)) > max(w.duration / frame_seconds, 1.0):
                dense_words += 1
    return {
        "mean_tokens_per_frame": float(np.mean(rates)) if rates else float("nan"),
        "p99_tokens_per_frame": float(np.percentile(rates, 99)) if rates else float("nan"),
        "share_of_words_denser_than_one_token_per_frame": dense_words / max(words, 1),
    }
