"""Word error statistics and icefall's result files (recogs-, errs-, wer-summary-)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import kaldialign

# kaldialign's gap symbol. Words come from str.split(), so one containing a space can never
# be a word: a recognised "*" is then a correct word, not an insertion. errs- files show a gap
# as "*", as icefall's do.
GAP = "<gap> *"
SHOWN_GAP = "*"


@dataclass
class WerStats:
    errors: int
    insertions: int
    deletions: int
    substitutions: int
    ref_words: int

    @property
    def wer(self) -> float:
        return 100.0 * self.errors / max(self.ref_words, 1)


def _shown(word: str) -> str:
    return SHOWN_GAP if word == GAP else word


def write_recogs(path: Path, results: Sequence[Tuple[str, List[str], List[str]]]) -> None:
    """``{cut_id}:\\tref=[...]`` / ``{cut_id}:\\thyp=[...]`` lines, sorted by cut id."""
    with open(path, "w") as f:
        for cut_id, ref, hyp in sorted(results):
            f.write(f"{cut_id}:\tref={ref}\n{cut_id}:\thyp={hyp}\n")


def write_error_stats(path: Path, name: str,
                      results: Sequence[Tuple[str, List[str], List[str]]]) -> WerStats:
    """The ``errs-`` file: %WER line, per-utterance alignments, substitution, deletion,
    insertion and per-word tables, as icefall writes them."""
    subs: Counter = Counter()
    ins: Counter = Counter()
    dels: Counter = Counter()
    words: Dict[str, List[int]] = defaultdict(lambda: [0, 0, 0, 0])  # corr, sub, ins, del
    num_corr = 0
    ref_len = 0
    per_utt = []
    for cut_id, ref, hyp in sorted(results):
        ali = kaldialign.align(ref, hyp, GAP)
        ref_len += len(ref)
        per_utt.append((cut_id, ali))
        for ref_word, hyp_word in ali:
            if ref_word == GAP:
                ins[hyp_word] += 1
                words[hyp_word][2] += 1
            elif hyp_word == GAP:
                dels[ref_word] += 1
                words[ref_word][3] += 1
            elif ref_word != hyp_word:
                subs[(ref_word, hyp_word)] += 1
                words[ref_word][1] += 1
                words[hyp_word][1] += 1
            else:
                words[ref_word][0] += 1
                num_corr += 1
    stats = WerStats(sum(subs.values()) + sum(ins.values()) + sum(dels.values()),
                     sum(ins.values()), sum(dels.values()), sum(subs.values()), ref_len)
    with open(path, "w") as f:
        f.write(f"%WER = {stats.wer:.2f}\n")
        f.write(f"Errors: {stats.insertions} insertions, {stats.deletions} deletions, "
                f"{stats.substitutions} substitutions, over {ref_len} reference words "
                f"({num_corr} correct)\n")
        f.write("Search below for sections starting with PER-UTT DETAILS:, SUBSTITUTIONS:, "
                "DELETIONS:, INSERTIONS:, PER-WORD STATS:\n\n")
        f.write("PER-UTT DETAILS: corr or (ref->hyp)\n")
        for cut_id, ali in per_utt:
            shown = " ".join(r if r == h else f"({_shown(r)}->{_shown(h)})" for r, h in ali)
            f.write(f"{cut_id}:\t{shown}\n")
        f.write("\nSUBSTITUTIONS: count ref -> hyp\n")
        for (r, h), count in sorted(subs.items(), key=lambda x: (-x[1], x[0])):
            f.write(f"{count}   {r} -> {h}\n")
        f.write("\nDELETIONS: count ref\n")
        for w, count in sorted(dels.items(), key=lambda x: (-x[1], x[0])):
            f.write(f"{count}   {w}\n")
        f.write("\nINSERTIONS: count hyp\n")
        for w, count in sorted(ins.items(), key=lambda x: (-x[1], x[0])):
            f.write(f"{count}   {w}\n")
        f.write("\nPER-WORD STATS: word  corr tot_errs count_in_ref count_in_hyp\n")
        for w, (corr, sub, insc, delc) in sorted(words.items(),
                                                 key=lambda x: (-sum(x[1][1:]), x[0])):
            f.write(f"{w}   {corr} {sub + insc + delc} {corr + sub + delc} {corr + sub + insc}\n")
    return stats
