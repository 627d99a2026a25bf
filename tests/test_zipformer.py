"""The Zipformer encoder: chunk-wise inference with carried caches equals the masked
whole-utterance pass ("simulated streaming"), no future leakage (with the full-context model
as the control that does see the future), stacked streams, the hidden layers distillation
reads, bad chunk sizes, and model configs of old (Conformer) and new checkpoints."""

import numpy as np
import pytest
import soundfile as sf
import torch

from icefall_kd.data.fbank import make_fbank_extractor
from icefall_kd.decoding.search import greedy_search
from icefall_kd.model.conformer import ConformerEncoder, EncoderConfig
from icefall_kd.model.encoders import stack_states, unstack_states
from icefall_kd.model.subsampling import SUBSAMPLING_LOOKAHEAD_FRAMES, frames_after_subsampling
from icefall_kd.model.transducer import Transducer, TransducerConfig, build_transducer
from icefall_kd.model.zipformer import ZipformerConfig, ZipformerEncoder
from icefall_kd.streaming.recognizer import StreamingConfig, StreamingRecognizer
# The Conformer tests' chunk-by-chunk driver (windows of 4C + 3 frames advancing 4C, padded
# past the end with -23, not zeros, so padding must not leak): generic over encoders.
from test_streaming_encoder import chunkwise

# Factors up to 8 (chunk sizes must be multiples of 4); small widths keep each test ~1 s.
TEST_CONFIG = dict(downsampling_factors=(1, 2, 4, 8, 2), encoder_dims=(16, 24, 32, 24, 20),
                   layers_per_stack=(1, 1, 2, 1, 1), num_heads=(2, 2, 2, 2, 2),
                   feedforward_dims=(32, 48, 64, 48, 40), conv_kernels=(5, 5, 3, 3, 5),
                   query_head_dim=8, value_head_dim=4, pos_head_dim=4, pos_dim=8,
                   embed_channels=(2, 4, 8), dropout=0.0)


def _encoder(causal=True, seed=0):
    torch.manual_seed(seed)
    encoder = ZipformerEncoder(ZipformerConfig(**TEST_CONFIG, causal=causal)).eval()
    with torch.no_grad():  # non-uniform downsampling weights: a misaligned group would show
        for module in encoder.modules():
            if module.__class__.__name__ == "Downsample":
                module.weights.normal_(std=1.0)
    return encoder


@pytest.mark.parametrize("chunk_size,left_context", [(4, 8), (8, 16), (8, 0), (16, 32), (4, 20)])
def test_chunkwise_equals_simulated_streaming(chunk_size, left_context):
    encoder = _encoder()
    torch.manual_seed(1)
    num_frames = torch.tensor([203, 150, 97])
    features = torch.randn(3, 203, 80)
    with torch.no_grad():
        simulated, sim_lens = encoder(features, num_frames, chunk_size, left_context)
        streamed, stream_lens = chunkwise(encoder, features, num_frames, chunk_size,
                                          left_context)
    # The Conformer's frame count, so filters, the recogniser and distillation line up.
    assert sim_lens.tolist() == frames_after_subsampling(num_frames).tolist()
    assert stream_lens.tolist() == sim_lens.tolist()
    for i, n in enumerate(sim_lens.tolist()):
        torch.testing.assert_close(streamed[i, :n], simulated[i, :n], atol=1e-4, rtol=1e-4)


def test_parity_check_can_fail():
    """Control for the parity test: simulated streaming with other chunks, or full context,
    does not match the chunk-wise output."""
    encoder = _encoder()
    torch.manual_seed(1)
    num_frames = torch.tensor([203])
    features = torch.randn(1, 203, 80)
    with torch.no_grad():
        streamed, _ = chunkwise(encoder, features, num_frames, 8, 16)
        for chunk, left in [(16, 16), (8, 32), (-1, -1)]:
            other, lens = encoder(features, num_frames, chunk, left)
            n = int(lens[0])
            assert (other[0, :n] - streamed[0, :n]).abs().max() > 1e-3, (chunk, left)


@pytest.mark.parametrize("causal", [True, False])
def test_no_future_leakage_and_the_full_context_control(causal):
    """Perturbing the input after chunk k's window leaves chunk k's outputs unchanged in the
    streaming model; the full-context model (control) changes them."""
    chunk, left = 8, 16
    encoder = _encoder(causal=causal)
    torch.manual_seed(2)
    features = torch.randn(1, 203, 80)
    num_frames = torch.tensor([203])
    k = 1  # chunk 1 covers output frames [8, 16), feature frames up to 4 * 16 + 3
    window_end = 4 * chunk * (k + 1) + SUBSAMPLING_LOOKAHEAD_FRAMES
    changed = features.clone()
    changed[:, window_end:] += 3.0 * torch.randn_like(changed[:, window_end:])
    args = (chunk, left) if causal else (-1, -1)
    with torch.no_grad():
        before, lens = encoder(features, num_frames, *args)
        after, _ = encoder(changed, num_frames, *args)
    seen = chunk * (k + 1)
    early = (after[0, :seen] - before[0, :seen]).abs().max()
    late = (after[0, seen : int(lens[0])] - before[0, seen : int(lens[0])]).abs().max()
    assert late > 1e-3  # the perturbation reaches the model at all
    if causal:
        assert early < 1e-5
    else:
        assert early > 1e-3


def test_stacked_streams_equal_single_streams():
    encoder = _encoder()
    torch.manual_seed(3)
    left = 16
    window = 4 * 8 + SUBSAMPLING_LOOKAHEAD_FRAMES
    singles = [encoder.init_state(1, left) for _ in range(2)]
    chunks = [torch.randn(1, window, 80) for _ in range(2)]
    lens = torch.tensor([window])
    with torch.no_grad():
        # Advance stream 0 by one chunk first, so the two streams' caches differ.
        _, _, singles[0] = encoder.streaming_forward(torch.randn(1, window, 80), lens, singles[0])
        alone = [encoder.streaming_forward(c, lens, s) for c, s in zip(chunks, singles)]
        together, _, state = encoder.streaming_forward(
            torch.cat(chunks), torch.cat([lens, lens]), stack_states(singles))
    for i, (out, _, new) in enumerate(alone):
        torch.testing.assert_close(together[i : i + 1], out, atol=1e-5, rtol=1e-5)
        for a, b in zip(unstack_states(state)[i].caches, new.caches):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_hidden_layers_are_the_outputs_of_the_encoder_cut_after_each_stack():
    encoder = _encoder()
    torch.manual_seed(4)
    features, num_frames = torch.randn(2, 150, 80), torch.tensor([150, 120])
    with torch.no_grad():
        out, lens, layers = encoder(features, num_frames, 8, 16, return_layers=True)
    assert len(layers) == encoder.config.num_layers == 5
    assert torch.equal(layers[-1], out)
    for i in range(len(layers) - 1):
        cut = {k: v[: i + 1] if isinstance(v, tuple) and k != "embed_channels" else v
               for k, v in TEST_CONFIG.items()}
        shorter = ZipformerEncoder(ZipformerConfig(**cut, causal=True)).eval()
        missing = shorter.load_state_dict(encoder.state_dict(), strict=False)
        assert not missing.missing_keys
        with torch.no_grad():
            expected, _ = shorter(features, num_frames, 8, 16)
        d = expected.shape[-1]
        assert layers[i].shape == out.shape
        torch.testing.assert_close(layers[i][..., :d], expected, atol=1e-5, rtol=1e-5)
        assert torch.all(layers[i][..., d:] == 0)


def test_bad_settings_name_the_option():
    encoder = _encoder()
    with pytest.raises(ValueError, match="--chunk-size 3"):
        encoder(torch.randn(1, 100, 80), torch.tensor([100]), 3, 8)
    with pytest.raises(ValueError, match="causal"):
        _encoder(causal=False)(torch.randn(1, 100, 80), torch.tensor([100]), 8, 8)
    with pytest.raises(ValueError, match="--left-context"):
        encoder.init_state(1, -1)
    with pytest.raises(ValueError, match="--conv-context chunk"):
        build_transducer("zipformer-tiny", 50, causal=True, conv_context="chunk")
    with pytest.raises(ValueError, match="encoder_dims has 2 entries"):
        ZipformerConfig(downsampling_factors=(1, 2, 4), encoder_dims=(8, 8))


def test_old_conformer_config_loads_and_zipformer_config_round_trips():
    torch.manual_seed(5)
    old_model = Transducer(TransducerConfig(encoder=EncoderConfig(
        d_model=32, num_layers=1, num_heads=2, ff_dim=64, conv_kernel=5), vocab_size=20,
        decoder_dim=16, joiner_dim=16))
    stored = old_model.config.to_dict()
    del stored["encoder_kind"]  # what a checkpoint written before the field holds
    del stored["encoder"]["conv_context"]
    again = Transducer(TransducerConfig.from_dict(stored))
    assert again.config.encoder_kind == "conformer"
    assert isinstance(again.encoder, ConformerEncoder)
    again.load_state_dict(old_model.state_dict())  # strict: same parameters

    zip_model = build_transducer("zipformer-tiny", 20, causal=True)
    stored = zip_model.config.to_dict()
    assert stored["encoder_kind"] == "zipformer"
    rebuilt = Transducer(TransducerConfig.from_dict(stored))
    assert isinstance(rebuilt.encoder, ZipformerEncoder)
    assert rebuilt.config == zip_model.config
    rebuilt.load_state_dict(zip_model.state_dict())
    # Control: the same fields read as a Conformer's are refused, not silently misread.
    with pytest.raises(TypeError):
        TransducerConfig.from_dict({**stored, "encoder_kind": "conformer"})
    with pytest.raises(ValueError, match="unknown encoder kind"):
        TransducerConfig.from_dict({**stored, "encoder_kind": "lstm"})


def test_chunkwise_from_audio_equals_simulated_streaming(tiny_corpus):
    """The deployed path: online fbank from audio in odd pieces, batched streams, greedy
    search across chunks, against greedy search on the simulated-streaming output."""
    torch.manual_seed(0)
    model = build_transducer("zipformer-tiny", 50, causal=True, dropout=0.0).eval()
    with torch.no_grad():  # sharper joiner: the random model emits tokens, ties are rare
        model.joiner.output_linear.weight.mul_(6)
        model.joiner.output_linear.bias[0] = 2.0
    flacs = sorted((tiny_corpus / "test-clean").rglob("*.flac"))[:6]
    audios = [sf.read(str(f), dtype="float32")[0] for f in flacs]
    for chunk, left in [(4, 16), (8, 32)]:
        streams = StreamingRecognizer(model, StreamingConfig(chunk, left)).recognize(
            audios, piece_samples=1234)
        tokens = 0
        for stream, samples in zip(streams, audios):
            feats = torch.from_numpy(make_fbank_extractor().extract(np.asarray(samples), 16000))
            with torch.no_grad():
                enc, lens = model.encoder(feats[None], torch.tensor([feats.shape[0]]), chunk, left)
                reference = greedy_search(model, enc, lens, 1)[0]
            assert stream.done
            assert stream.hyp.tokens == reference.tokens
            tokens += len(reference.tokens)
        assert tokens > 20  # the model does emit: the comparison means something


def test_the_conformer_streaming_exporter_refuses_a_zipformer(tmp_path):
    from icefall_kd.export.onnx_export import export_streaming_onnx

    model = build_transducer("zipformer-tiny", 20, causal=True)
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("".join(f"t{i} {i}\n" for i in range(20)))
    with pytest.raises(ValueError, match="export_streaming_zipformer_onnx"):
        export_streaming_onnx(model, tmp_path, "x", 8, 16, tokens)
    assert not list(tmp_path.glob("*.onnx"))


def test_a_streaming_zipformer_starts_from_a_full_context_ones_weights():
    """--init-from teacher: the causal convolution reads the past half of the same K-tap
    kernel, so the weights load; with full context the two still differ only through the
    convolutions (control: the causal one does not see the future, the teacher does)."""
    torch.manual_seed(6)
    teacher = build_transducer("zipformer-tiny", 20, causal=False, dropout=0.0).eval()
    config = teacher.config.to_dict()
    config["encoder"]["causal"] = True
    student = Transducer(TransducerConfig.from_dict(config)).eval()
    student.load_state_dict(teacher.state_dict())  # strict
    features, num_frames = torch.randn(1, 120, 80), torch.tensor([120])
    with torch.no_grad():
        out_t, _ = teacher.encoder(features, num_frames)
        out_s, _ = student.encoder(features, num_frames)
    assert (out_t - out_s).abs().max() > 1e-4


@pytest.mark.parametrize("tq,tk", [(7, 7), (4, 13), (1, 6)])
def test_scores_by_key_picks_each_pairs_distance(tq, tk):
    """The strided view and the gather that ONNX export traces both put the score of
    distance j - i - (Tk - Tq) at (query i, key j), checked against a brute-force table;
    the view's gradient equals the gather's. Control: distances in reverse order (the sign
    of key - query swapped) do not pass."""
    from icefall_kd.model.zipformer.attention import gather_scores_by_key, scores_by_key

    distances = torch.arange(-(tk - 1), tq, dtype=torch.float64)  # column c: distance c - (tk - 1)
    # Score of distance d for batch n, head h: d + 100 n + 1000 h, so every entry is unique.
    pos_scores = (distances + 100.0 * torch.arange(2.0).view(2, 1, 1, 1)
                  + 1000.0 * torch.arange(3.0).view(1, 3, 1, 1)).expand(2, 3, tq, -1)
    pos_scores = (pos_scores + 0.0).requires_grad_()
    expected = torch.empty(2, 3, tq, tk, dtype=torch.float64)
    for n in range(2):
        for h in range(3):
            for i in range(tq):
                for j in range(tk):
                    expected[n, h, i, j] = j - i - (tk - tq) + 100 * n + 1000 * h
    strided = scores_by_key(pos_scores, tk)
    gathered = gather_scores_by_key(pos_scores, tk)
    assert torch.equal(strided, expected) and torch.equal(gathered, expected)
    assert not torch.equal(scores_by_key(pos_scores.flip(-1), tk), expected)
    # Any layout whose last dimension is contiguous (the attention's is (H, N, Tq, R)).
    head_major = pos_scores.detach().transpose(0, 1).contiguous().transpose(0, 1)
    assert torch.equal(scores_by_key(head_major, tk), expected)
    upstream = torch.randn(2, 3, tq, tk, dtype=torch.float64)
    grad_strided, = torch.autograd.grad((strided * upstream).sum(), pos_scores)
    grad_gathered, = torch.autograd.grad((gathered * upstream).sum(), pos_scores)
    torch.testing.assert_close(grad_strided, grad_gathered, rtol=0, atol=0)


@pytest.mark.parametrize("shift,offset", [(1.0, 0.313261687), (4.0, 0.035)])
def test_swoosh_function_equals_its_formula_with_gradients(shift, offset):
    """The fused Swoosh (a custom autograd function) gives the formula's values, and its
    hand-written backward passes a finite-difference gradcheck in float64. Control: a
    derivative with the wrong slope (0.8 for 0.08) fails the same check."""
    from icefall_kd.model.zipformer.modules import _Swoosh, swoosh

    x = (torch.randn(3, 5, dtype=torch.float64) * 4).requires_grad_()
    formula = torch.nn.functional.softplus(x - shift) - 0.08 * x - offset
    torch.testing.assert_close(swoosh(x, shift, offset), formula, rtol=1e-12, atol=1e-12)
    assert torch.autograd.gradcheck(lambda t: _Swoosh.apply(t, shift, offset), (x,))

    class WrongSlope(_Swoosh):
        @staticmethod
        def backward(ctx, grad):
            (t,) = ctx.saved_tensors
            return (torch.sigmoid(t - ctx.shift) - 0.8) * grad, None, None

    assert not torch.autograd.gradcheck(lambda t: WrongSlope.apply(t, shift, offset), (x,),
                                        raise_exception=False)


def test_channels_last_front_end_equals_the_plain_layers():
    """The front end's channels-last convolutions with the reordered output weight compute
    what its modules do run plainly in NCHW (``conv`` Sequential, channel-major flatten,
    ``out``, ``norm``), outputs and parameter gradients. Control: the flatten in the wrong
    order (freq-major) differs."""
    torch.manual_seed(0)
    embed = _encoder().embed.double()
    x = torch.randn(2, 27, 80, dtype=torch.float64)
    lens = torch.tensor([27, 20])

    def plain(channel_major=True):
        y = embed.conv(((x - embed.feature_mean) * embed.feature_inv_std).unsqueeze(1))
        n, c, t, f = y.shape
        y = y.permute(0, 2, 1, 3) if channel_major else y.permute(0, 2, 3, 1)
        return embed.norm(embed.out(y.reshape(n, t, c * f)))

    out, out_lens = embed(x, lens)
    expected = plain()
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-10)
    assert torch.equal(out_lens, torch.tensor([12, 8]))
    upstream = torch.randn_like(out)
    params = list(embed.parameters())
    grads = torch.autograd.grad((out * upstream).sum(), params)
    expected_grads = torch.autograd.grad((expected * upstream).sum(), params)
    for got, want in zip(grads, expected_grads):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10)
    assert (plain(channel_major=False) - expected).abs().max() > 1e-3


@pytest.mark.parametrize("chunk_size,left_context", [(4, 8), (4, 0), (8, 4), (12, 20)])
def test_block_by_block_attention_equals_the_masked_matrix(chunk_size, left_context,
                                                           monkeypatch):
    """Chunked attention with a finite left context, computed block by block
    (``ChunkBlocks``), gives the encoder outputs and parameter gradients of the masked
    (T, T) matrix on every real frame (float64). Control: blocks with one frame of left
    context fewer than the mask (one more where it is 0) differ."""
    import icefall_kd.model.zipformer.encoder as encoder_module
    from icefall_kd.model.zipformer.attention import ChunkBlocks

    encoder = _encoder().double()
    features = torch.randn(3, 203, 80, dtype=torch.float64)
    lens = torch.tensor([203, 150, 97])
    params = list(encoder.parameters())

    def run(blocks: bool):
        monkeypatch.setattr(encoder_module, "CHUNK_BLOCKS", blocks)
        out, out_lens = encoder(features, lens, chunk_size, left_context)
        real = (torch.arange(out.shape[1]) < out_lens.unsqueeze(1)).unsqueeze(-1)
        upstream = torch.randn(out.shape, dtype=out.dtype,
                               generator=torch.Generator().manual_seed(1)) * real
        grads = torch.autograd.grad((out * upstream).sum(), params, allow_unused=True)
        return out * real, [g if g is not None else torch.zeros(()) for g in grads]

    built = []
    original_build = ChunkBlocks.build
    monkeypatch.setattr(ChunkBlocks, "build", classmethod(
        lambda cls, pad, chunk, left: built.append(chunk) or original_build(pad, chunk, left)))
    blocked, blocked_grads = run(True)
    assert built, "no stack attended block by block"
    masked, masked_grads = run(False)
    torch.testing.assert_close(blocked, masked, rtol=1e-10, atol=1e-12)
    for got, want in zip(blocked_grads, masked_grads):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)
    monkeypatch.setattr(ChunkBlocks, "build", classmethod(
        lambda cls, pad, chunk, left: original_build(pad, chunk, max(left - 1, 0)
                                                     if left else left + 1)))
    short, _ = run(True)
    assert (short - masked).abs().max() > 1e-6
