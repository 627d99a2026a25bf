"""Word times from a Viterbi alignment of the full-context teacher, stored with the cuts
(``supervision.alignment["word_teacher"]``), and, where exact word times exist (the
embedded corpus), the aligner's error against them.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from lhotse import CutSet, load_manifest
from lhotse.supervision import AlignmentItem

from icefall_kd.recipes.common import add_checkpoint_arguments, load_bpe, load_model
from icefall_kd.streaming.forced_alignment import (
    lattice_log_probs,
    viterbi_token_frames,
    word_start_times,
)
from icefall_kd.streaming.latency import LatencySummary, reference_word_starts
from icefall_kd.utils import HelpFormatter, setup_logging, write_manifest

ALIGNMENT_KEY = "word_teacher"


def build_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    add_checkpoint_arguments(parser)
    parser.add_argument("--lang-dir", type=Path, default=Path("data/lang_bpe_500"))
    parser.add_argument("--manifest-dir", type=Path, default=Path("data/fbank"))
    parser.add_argument("--parts", default="test-clean test-other")
    return parser


@torch.no_grad()
def align_cuts(model, cuts: CutSet, sp) -> CutSet:
    aligned = []
    for cut in cuts:
        sup = cut.supervisions[0]
        features = torch.from_numpy(cut.load_features()).unsqueeze(0)
        encoder_out, lens = model.encoder(features, torch.tensor([features.shape[1]]))
        tokens = sp.encode(sup.text)
        words = sup.text.split()
        if int(lens[0]) < len(tokens):
            logging.warning(f"cut {cut.id}: fewer frames than tokens; no alignment")
            aligned.append(cut)
            continue
        frames = viterbi_token_frames(lattice_log_probs(model, encoder_out[0, : int(lens[0])], tokens),
                                      tokens, model.config.blank_id)
        starts = word_start_times([sp.id_to_piece(t) for t in tokens], frames)
        ends = starts[1:] + [cut.duration]
        items = [AlignmentItem(symbol=w, start=round(s, 3), duration=round(max(e - s, 0.0), 3))
                 for w, s, e in zip(words, starts, ends)]
        alignment = dict(sup.alignment or {})
        alignment[ALIGNMENT_KEY] = items
        sup.alignment = alignment
        aligned.append(cut)
    return CutSet.from_cuts(aligned)


def aligner_error(cuts: CutSet) -> Optional[dict]:
    """Start-time error of the teacher alignment against exact word times, if present."""
    errors = []
    for cut in cuts:
        alignment = cut.supervisions[0].alignment or {}
        exact = reference_word_starts(alignment.get("word"))
        teacher = [item.start for item in alignment.get(ALIGNMENT_KEY, [])]
        if exact and len(exact) == len(teacher):
            errors += [t - e for t, e in zip(teacher, exact)]
    if not errors:
        return None
    errors = np.asarray(errors)
    return {
        "words": int(errors.size),
        "mean_signed_ms": float(1000 * errors.mean()),
        "absolute": LatencySummary.of(list(np.abs(errors))).__dict__,
    }


def main(description: str = "", argv: Optional[Sequence[str]] = None) -> None:
    args = build_parser(description or __doc__).parse_args(argv)
    setup_logging()
    model = load_model(args)
    sp = load_bpe(args.lang_dir)
    for part in args.parts.split():
        path = args.manifest_dir / f"librispeech_cuts_{part}.jsonl.gz"
        cuts = align_cuts(model, load_manifest(path), sp)
        write_manifest(cuts, path)
        error = aligner_error(cuts)
        if error is not None:
            with open(args.exp_dir / f"aligner-error-{part}.json", "w") as f:
                json.dump(error, f, indent=2)
            logging.info(f"{part}: teacher alignment vs exact word starts: mean signed "
                         f"{error['mean_signed_ms']:.0f} ms, absolute "
                         f"{LatencySummary(**error['absolute'])}")
        logging.info(f"{part}: word alignments stored in {path} as alignment['{ALIGNMENT_KEY}']")
