"""Search and scoring: two code paths that must agree, and known WER values."""

import torch

from icefall_kd.decoding.search import greedy_search, modified_beam_search
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


def test_more_symbols_per_frame_never_emit_fewer_tokens_at_a_frame():
    model, encoder_out, lens = _model_and_encoder_out(seed=2)
    one = greedy_search(model, encoder_out, lens, max_sym_per_frame=1)
    for hyp in one:
        assert len(hyp.timestamps) == len(set(hyp.timestamps))  # at most one per frame
        assert hyp.timestamps == sorted(hyp.timestamps)


def test_beam_hypothesis_score_is_its_path_log_probability():
    model, encoder_out, lens = _model_and_encoder_out(seed=3, n=1, t=12)
    hyp = modified_beam_search(model, encoder_out, lens, beam=4)[0]
    # Re-score the single path (tokens at their frames, blank elsewhere). Merged paths can
    # only add probability, so the beam score is at least the path's own score.
    with torch.no_grad():
        enc = model.joiner.encoder_proj(encoder_out[0])
    context = [-1, 0]
    score = 0.0
    emitted = dict(zip(hyp.timestamps, hyp.tokens))
    for t in range(12):
        with torch.no_grad():
            dec = model.joiner.decoder_proj(model.decoder(torch.tensor([context]), need_pad=False)[:, -1])
            log_probs = model.joiner(enc[t : t + 1], dec, project_input=False).log_softmax(-1)[0]
        token = emitted.get(t, 0)
        score += float(log_probs[token])
        if token:
            context = context[1:] + [token]
    assert hyp.log_prob >= score - 1e-4


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
