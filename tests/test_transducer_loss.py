"""The pruned RNN-T loss against independent truth: every alignment enumerated by brute
force on tiny lattices, the full (unpruned) loss, and finite differences."""

import itertools
import math

import pytest
import torch

from icefall_kd.loss.rnnt_backend import rnnt_backend
from icefall_kd.loss.transducer_loss import pad_token_ids, pruned_transducer_loss
from icefall_kd.training.scheduler import warmup_loss_scales
from icefall_kd.model.transducer import build_transducer


def brute_force_nll(log_probs: torch.Tensor, symbols, blank: int) -> float:
    """log_probs: (T, S+1, V) log-softmax at every lattice node. Enumerates every path of
    T blanks and S symbols that ends with a blank (the regular RNN-T topology)."""
    t_max, s_max = log_probs.shape[0], len(symbols)
    scores = []
    for symbol_steps in itertools.combinations(range(t_max + s_max - 1), s_max):
        t = s = 0
        score = 0.0
        for step in range(t_max + s_max):
            if step in symbol_steps:
                score += float(log_probs[t, s, symbols[s]])
                s += 1
            else:
                score += float(log_probs[t, s, blank])
                t += 1
        assert (t, s) == (t_max, s_max)
        scores.append(score)
    return -float(torch.logsumexp(torch.tensor(scores, dtype=torch.float64), 0))


def _tiny_model(vocab=7, seed=0):
    torch.manual_seed(seed)
    return build_transducer("tiny", vocab_size=vocab, causal=False, dropout=0.0).eval()


def _dense_log_probs(model, encoder_out, token_ids):
    decoder_in = torch.tensor([[0] + token_ids])
    dec = model.decoder(decoder_in)[0]  # (S+1, D)
    logits = model.joiner(encoder_out[:, None, :], dec[None, :, :])  # (T, S+1, V)
    return logits.log_softmax(-1).detach()


@pytest.mark.parametrize("t,tokens", [(4, [3, 1, 5]), (5, [2, 2]), (3, [4]), (6, [1, 2, 3, 4])])
def test_pruned_loss_equals_brute_force_when_range_covers_all_symbols(t, tokens):
    model = _tiny_model()
    torch.manual_seed(t)
    encoder_out = torch.randn(1, t, model.encoder.output_dim)
    out = pruned_transducer_loss(model, encoder_out, torch.tensor([t]), [tokens],
                                 prune_range=len(tokens) + 1)
    expected = brute_force_nll(_dense_log_probs(model, encoder_out[0], tokens).double(), tokens, 0)
    assert math.isclose(float(out.pruned_loss), expected, rel_tol=1e-5, abs_tol=1e-4)


def test_full_loss_of_backend_equals_brute_force_on_k2s_example():
    """k2's own tiny case: B=1, S=3, T=4, C=3, symbols [0, 1, 0], termination symbol 2."""
    torch.manual_seed(0)
    logits = torch.randn(1, 4, 4, 3, dtype=torch.float64)
    symbols = [0, 1, 0]
    loss = rnnt_backend().rnnt_loss(logits, torch.tensor([symbols]), termination_symbol=2,
                                    reduction="sum")
    expected = brute_force_nll(logits[0].log_softmax(-1), symbols, blank=2)
    assert math.isclose(float(loss), expected, rel_tol=1e-9)


def test_pruned_equals_full_loss_on_a_batch_with_padding():
    model = _tiny_model(vocab=11, seed=3)
    torch.manual_seed(3)
    lens = torch.tensor([9, 7, 5])
    encoder_out = torch.randn(3, 9, model.encoder.output_dim)
    tokens = [[1, 2, 3, 4], [5, 6], [7, 8, 9, 10, 1]]
    out = pruned_transducer_loss(model, encoder_out, lens, tokens, prune_range=6)
    expected = sum(
        brute_force_nll(_dense_log_probs(model, encoder_out[b, : lens[b]], tokens[b]).double(),
                        tokens[b], 0)
        for b in range(2)
    )
    # The third utterance (T=5, S=5) has 126 paths: still enumerable.
    expected += brute_force_nll(
        _dense_log_probs(model, encoder_out[2, :5], tokens[2]).double(), tokens[2], 0)
    assert math.isclose(float(out.pruned_loss), expected, rel_tol=1e-5)


def test_pruned_loss_gradient_matches_finite_differences():
    model = _tiny_model(seed=5).double()
    torch.manual_seed(5)
    encoder_out = torch.randn(2, 8, model.encoder.output_dim, dtype=torch.float64,
                              requires_grad=True)
    lens = torch.tensor([8, 6])
    tokens = [[1, 2, 3], [4, 5]]

    def loss_at(x):
        return pruned_transducer_loss(model, x, lens, tokens, prune_range=4).pruned_loss

    loss_at(encoder_out).backward()
    direction = torch.randn_like(encoder_out)
    eps = 1e-6
    with torch.no_grad():
        numeric = (loss_at(encoder_out + eps * direction) - loss_at(encoder_out - eps * direction)) / (2 * eps)
    analytic = (encoder_out.grad * direction).sum()
    assert math.isclose(float(numeric), float(analytic), rel_tol=1e-4), (numeric, analytic)


def test_narrow_prune_range_gives_a_larger_loss_than_full():
    """Pruning removes paths, so it can only lower the total probability."""
    model = _tiny_model(vocab=9, seed=7)
    torch.manual_seed(7)
    encoder_out = torch.randn(1, 10, model.encoder.output_dim)
    tokens = [[1, 2, 3, 4, 5, 6]]
    narrow = pruned_transducer_loss(model, encoder_out, torch.tensor([10]), tokens, prune_range=2)
    full = pruned_transducer_loss(model, encoder_out, torch.tensor([10]), tokens, prune_range=7)
    assert float(narrow.pruned_loss) >= float(full.pruned_loss) - 1e-4


def test_pad_token_ids_and_warmup_scales():
    assert pad_token_ids([[1, 2], [3]], 0, "cpu").tolist() == [[1, 2], [3, 0]]
    assert warmup_loss_scales(0, 2000, 0.5) == (1.0, 0.1)
    assert warmup_loss_scales(2000, 2000, 0.5) == (0.5, 1.0)
    simple, pruned = warmup_loss_scales(1000, 2000, 0.5)
    assert math.isclose(simple, 0.75) and math.isclose(pruned, 0.55)


def test_fine_tuning_does_not_restart_the_loss_warm_up():
    from icefall_kd.recipes.train_transducer import build_parser, loss_config

    parser = build_parser("", streaming=True)

    def warm_step(*argv):
        return loss_config(parser.parse_args(["--exp-dir", "e", *argv])).warm_step

    assert warm_step() == 1000  # from scratch
    assert warm_step("--init-from", "exp", "--init-epoch", "3") == 0
    assert warm_step("--init-from", "scratch") == 1000
    assert warm_step("--init-from", "exp", "--warm-step", "7") == 7
