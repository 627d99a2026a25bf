"""Transducer search over encoder output: greedy (batched) and modified beam search.

Both work on the joiner-projected encoder output and decoder output, as sherpa-onnx does:
enc: (N, T, joiner_dim) = joiner.encoder_proj(encoder_out).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch

from icefall_kd.model.transducer import Transducer


@dataclass
class Hypothesis:
    tokens: List[int]  # emitted tokens (no blanks, no initial context)
    timestamps: List[int] = field(default_factory=list)  # encoder frame of each token
    log_prob: float = 0.0


def _decoder_out(model: Transducer, contexts: List[List[int]], device) -> torch.Tensor:
    """Projected decoder output for N contexts of ``context_size`` tokens -> (N, joiner_dim)."""
    y = torch.tensor(contexts, dtype=torch.int64, device=device)
    return model.joiner.decoder_proj(model.decoder(y, need_pad=False)[:, -1])


def _context_of(model: Transducer, tokens: List[int]) -> List[int]:
    """The decoder's input after ``tokens``: sherpa-onnx starts from
    [-1] * (context_size - 1) + [blank]."""
    size = model.config.context_size
    return ([-1] * (size - 1) + [model.config.blank_id] + list(tokens))[-size:]


@torch.no_grad()
def greedy_search(model: Transducer, encoder_out: torch.Tensor, encoder_lens: torch.Tensor,
                  max_sym_per_frame: int = 1, hyps: Optional[List[Hypothesis]] = None,
                  frame_offset: Optional[List[int]] = None) -> List[Hypothesis]:
    """encoder_out: (N, T, D) raw encoder output; encoder_lens: (N,). Emits at most
    ``max_sym_per_frame`` symbols per frame (1 = what sherpa-onnx's streaming greedy does).

    Streaming: pass the ``hyps`` of earlier chunks to continue them (they are extended in
    place) and ``frame_offset[i]``, the number of encoder frames stream i already decoded,
    so that timestamps count from the start of the stream.
    """
    device = encoder_out.device
    blank = model.config.blank_id
    enc = model.joiner.encoder_proj(encoder_out)
    n, t_max, _ = enc.shape
    hyps = hyps if hyps is not None else [Hypothesis([]) for _ in range(n)]
    offsets = frame_offset or [0] * n
    contexts = [_context_of(model, h.tokens) for h in hyps]
    dec = _decoder_out(model, contexts, device)
    for t in range(t_max):
        active = (encoder_lens > t).nonzero().flatten().tolist()
        if not active:
            break
        emitted = {i: 0 for i in active}
        pending = active
        while pending:
            logits = model.joiner(enc[pending, t], dec[pending], project_input=False)
            best = logits.argmax(dim=-1).tolist()
            changed = []
            for i, token in zip(pending, best):
                if token != blank and emitted[i] < max_sym_per_frame:
                    hyps[i].tokens.append(token)
                    hyps[i].timestamps.append(offsets[i] + t)
                    contexts[i] = contexts[i][1:] + [token]
                    emitted[i] += 1
                    changed.append(i)
            if changed:
                dec[changed] = _decoder_out(model, [contexts[i] for i in changed], device)
            pending = [i for i in changed if emitted[i] < max_sym_per_frame]
    return hyps


Beams = Dict[Tuple[int, ...], Hypothesis]


@torch.no_grad()
def beam_search_frames(model: Transducer, enc_proj: torch.Tensor, beams: Beams, beam: int,
                       frame_offset: int = 0, cache: Optional[dict] = None) -> Beams:
    """Advances one stream's beams over its projected encoder frames enc_proj: (T, J),
    at most one symbol per frame (icefall's modified_beam_search); hypotheses with the same
    tokens are merged by adding their probabilities."""
    device = enc_proj.device
    blank = model.config.blank_id
    cache = cache if cache is not None else {}
    for t in range(enc_proj.shape[0]):
        keys = list(beams)
        contexts = [tuple(_context_of(model, list(key))) for key in keys]
        missing = [c for c in set(contexts) if c not in cache]
        if missing:
            outs = _decoder_out(model, [list(c) for c in missing], device)
            cache.update({c: outs[i] for i, c in enumerate(missing)})
        dec = torch.stack([cache[c] for c in contexts])
        log_probs = model.joiner(enc_proj[t].expand(len(keys), -1), dec,
                                 project_input=False).log_softmax(-1)
        scores = log_probs + torch.tensor([beams[k].log_prob for k in keys],
                                          device=device).unsqueeze(1)
        top = scores.flatten().topk(min(beam, scores.numel()))
        vocab = scores.shape[1]
        new_beams: Beams = {}
        for score, index in zip(top.values.tolist(), top.indices.tolist()):
            source, token = keys[index // vocab], index % vocab
            old = beams[source]
            if token == blank:
                key, hyp = source, Hypothesis(old.tokens, old.timestamps, score)
            else:
                key = source + (token,)
                hyp = Hypothesis(old.tokens + [token], old.timestamps + [frame_offset + t], score)
            if key in new_beams:
                new_beams[key].log_prob = float(
                    torch.logaddexp(torch.tensor(new_beams[key].log_prob), torch.tensor(score))
                )
            else:
                new_beams[key] = hyp
        beams = new_beams
    return beams


def initial_beams() -> Beams:
    return {(): Hypothesis([], [], 0.0)}


def best_hypothesis(beams: Beams) -> Hypothesis:
    return max(beams.values(), key=lambda h: h.log_prob)


@torch.no_grad()
def modified_beam_search(model: Transducer, encoder_out: torch.Tensor,
                         encoder_lens: torch.Tensor, beam: int = 4) -> List[Hypothesis]:
    """Whole utterances: one :func:`beam_search_frames` call per utterance."""
    enc_all = model.joiner.encoder_proj(encoder_out)
    return [
        best_hypothesis(beam_search_frames(model, enc_all[b, : int(encoder_lens[b])],
                                           initial_beams(), beam))
        for b in range(encoder_out.shape[0])
    ]
