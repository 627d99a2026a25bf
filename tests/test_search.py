"""Search and scoring: two code paths that must agree, and known WER values."""

from collections import Counter

import torch

from icefall_kd.decoding.search import (
    beam_search_frames,
    best_hypothesis,
    greedy_search,
    initial_beams,
    modified_beam_search,
)
from icefall_kd.decoding.wer import write_error_stats, write_recogs
from icefall_kd.model.transducer import build_transducer


def _model_and_encoder_out(seed=0, n=3, t=30):
    torch.manual_seed(seed)
    model = build_transducer("tiny", vocab_size=12, causal=False, dropout=0.0).eval()
    # Scale the joiner so that non-blank symbols win often enough to matter.
    with torch.no_grad():
        model.joiner.output_linear.weight.mul_(8)
    encoder_out = torch.randn(n, t, model.encoder.output_dim)
    lens = torch.tensor([t, t - 7, t - 15][:n])
    return model, encoder_out, lens


def test_beam_of_one_equals_greedy_with_one_symbol_per_frame():
    model, encoder_out, lens = _model_and_encoder_out()
    greedy = greedy_search(model, encoder_out, lens, max_sym_per_frame=1)
    beam = modified_beam_search(model, encoder_out, lens, beam=1)
    assert any(h.tokens for h in greedy)
    for g, b in zip(greedy, beam):
        assert g.tokens == b.tokens and g.timestamps == b.timestamps


def test_batched_greedy_equals_one_utterance_at_a_time():
    model, encoder_out, lens = _model_and_encoder_out(seed=1)
    batched = greedy_search(model, encoder_out, lens, max_sym_per_frame=3)
    for i in range(3):
        single = greedy_search(model, encoder_out[i : i + 1, : lens[i]], lens[i : i + 1], 3)[0]
        assert single.tokens == batched[i].tokens


@torch.no_grad()
def _greedy_oracle(model, encoder_out, length, max_sym_per_frame):
    """Greedy search written out for one utterance: encoder_out (T, D) raw; the decoder
    reads its last context_size tokens, starting from [-1, ..., -1, blank] as sherpa-onnx
    does; returns (tokens, frames)."""
    blank, size = model.config.blank_id, model.config.context_size
    context = [-1] * (size - 1) + [blank]
    tokens, frames = [], []
    for t in range(length):
        for _ in range(max_sym_per_frame):
            decoder_out = model.decoder(torch.tensor([context]), need_pad=False)[:, -1]
            token = int(model.joiner(encoder_out[t : t + 1], decoder_out).argmax(-1))
            if token == blank:
                break
            tokens.append(token)
            frames.append(t)
            context = context[1:] + [token]
    return tokens, frames


def test_greedy_search_equals_a_plain_loop_over_decoder_and_joiner():
    model, encoder_out, lens = _model_and_encoder_out(seed=4)
    for max_sym in (1, 3):
        hyps = greedy_search(model, encoder_out, lens, max_sym_per_frame=max_sym)
        for i, hyp in enumerate(hyps):
            tokens, frames = _greedy_oracle(model, encoder_out[i], int(lens[i]), max_sym)
            assert tokens, "the oracle emits nothing: the comparison would mean nothing"
            assert (hyp.tokens, hyp.timestamps) == (tokens, frames), (max_sym, i)


def _per_frame(hyp):
    return Counter(hyp.timestamps)


def test_more_symbols_per_frame_never_emit_fewer_tokens_at_a_frame():
    """Both searches agree until the first frame where their counts differ (the same
    decoder context up to there); at that frame the one allowed three symbols emits more."""
    model, encoder_out, lens = _model_and_encoder_out(seed=2)
    one = greedy_search(model, encoder_out, lens, max_sym_per_frame=1)
    three = greedy_search(model, encoder_out, lens, max_sym_per_frame=3)
    for a, b, length in zip(one, three, lens.tolist()):
        assert a.tokens and max(_per_frame(a).values()) == 1
        assert max(_per_frame(b).values()) == 3  # three symbols at a frame do happen
        assert a.timestamps == sorted(a.timestamps) and b.timestamps == sorted(b.timestamps)
        counts_a, counts_b = _per_frame(a), _per_frame(b)
        first = next(t for t in range(length) if counts_a[t] != counts_b[t])
        assert counts_b[first] > counts_a[first]
        before = sum(counts_a[t] for t in range(first))
        assert a.tokens[:before + counts_a[first]] == b.tokens[:before + counts_a[first]]


def _path_log_probs(model, encoder_out, tokens, num_frames):
    """log P(t, u, k) for the prefixes of ``tokens``: (T, U + 1, V), written out."""
    blank, size = model.config.blank_id, model.config.context_size
    contexts = [([-1] * (size - 1) + [blank] + tokens[:u])[-size:] for u in range(len(tokens) + 1)]
    with torch.no_grad():
        decoder_out = model.decoder(torch.tensor(contexts), need_pad=False)[:, -1]  # (U + 1, D)
        logits = model.joiner(encoder_out[:num_frames].unsqueeze(1), decoder_out.unsqueeze(0))
    return logits.log_softmax(-1)


def _sum_over_alignments(log_probs, tokens):
    """log of the total probability of ``tokens`` over every alignment that emits at most
    one symbol per frame (a frame emits a token or blank), as modified beam search scores."""
    num_frames, blank = log_probs.shape[0], 0
    alpha = torch.full((len(tokens) + 1,), float("-inf"), dtype=torch.float64)
    alpha[0] = 0.0
    for t in range(num_frames):
        stay = alpha + log_probs[t, :, blank].double()
        move = torch.full_like(alpha, float("-inf"))
        move[1:] = alpha[:-1] + log_probs[t, torch.arange(len(tokens)), tokens].double()
        alpha = torch.logaddexp(stay, move)
    return float(alpha[-1])


def test_beam_hypothesis_score_is_its_path_log_probability():
    # A beam wide enough to keep every hypothesis of 3 frames (1 + 11 + 121 + 1331): each
    # score is exactly the sum over all alignments of its tokens, merged paths included.
    model, encoder_out, lens = _model_and_encoder_out(seed=3, n=1, t=3)
    with torch.no_grad():
        enc = model.joiner.encoder_proj(encoder_out[0])
    beams = beam_search_frames(model, enc, initial_beams(), beam=2000)
    assert len(beams) == 1464
    merged = sorted((h for h in beams.values() if 0 < len(h.tokens) < 3),  # several alignments
                    key=lambda h: -h.log_prob)[:5]
    for hyp in merged + [best_hypothesis(beams)]:
        log_probs = _path_log_probs(model, encoder_out[0], hyp.tokens, 3)
        assert abs(hyp.log_prob - _sum_over_alignments(log_probs, hyp.tokens)) < 1e-4, hyp
    # A pruned beam: at least its own path's score (merging adds probability) and at most the
    # sum over all alignments (pruned paths are missing).
    model, encoder_out, lens = _model_and_encoder_out(seed=3, n=1, t=12)
    hyp = modified_beam_search(model, encoder_out, lens, beam=4)[0]
    assert len(hyp.tokens) > 3
    log_probs = _path_log_probs(model, encoder_out[0], hyp.tokens, 12)
    emitted = dict(zip(hyp.timestamps, range(len(hyp.tokens))))
    path, u = 0.0, 0
    for t in range(12):
        if t in emitted:
            path += float(log_probs[t, u, hyp.tokens[u]])
            u += 1
        else:
            path += float(log_probs[t, u, 0])
    assert path - 1e-4 <= hyp.log_prob <= _sum_over_alignments(log_probs, hyp.tokens) + 1e-4
    assert hyp.log_prob < -1.0  # a probability, not a score stuck at 0


def test_error_stats_known_values(tmp_path):
    results = [("u1", "A B C D".split(), "A X C D E".split()), ("u2", "F G".split(), "F".split())]
    stats = write_error_stats(tmp_path / "errs.txt", "t", results)
    assert (stats.substitutions, stats.insertions, stats.deletions, stats.ref_words) == (1, 1, 1, 6)
    assert abs(stats.wer - 50.0) < 1e-9
    text = (tmp_path / "errs.txt").read_text()
    assert text.startswith("%WER = 50.00\n") and "1   B -> X" in text and "(B->X)" in text
    assert "u1:\tA (B->X) C D (*->E)\n" in text and "u2:\tF (G->*)\n" in text  # icefall's gaps
    write_recogs(tmp_path / "recogs.txt", results)
    assert "u1:\tref=['A', 'B', 'C', 'D']" in (tmp_path / "recogs.txt").read_text()


def test_a_recognised_star_is_a_correct_word_not_an_insertion(tmp_path):
    same = [("u1", "A * B".split(), "A * B".split())]
    stats = write_error_stats(tmp_path / "errs.txt", "t", same)
    assert (stats.errors, stats.ref_words) == (0, 3)
    assert "u1:\tA * B\n" in (tmp_path / "errs.txt").read_text()
    # Control: a "*" the reference does not have is still an insertion.
    inserted = [("u1", "A * B".split(), "A * * B".split())]
    stats = write_error_stats(tmp_path / "errs.txt", "t", inserted)
    assert (stats.errors, stats.insertions, stats.ref_words) == (1, 1, 3)
    assert "\nINSERTIONS: count hyp\n1   *\n" in (tmp_path / "errs.txt").read_text()
