"""Chunk-wise inference with cached states equals the masked whole-utterance
("simulated streaming") forward pass, for every chunk size and left context, with the
causal and the chunk-aware convolution."""

import pytest
import torch

from icefall_kd.model.conformer import (
    ConformerEncoder,
    EncoderConfig,
    chunk_attention_mask,
    stack_states,
    unstack_states,
)
from icefall_kd.model.subsampling import SUBSAMPLING_LOOKAHEAD_FRAMES


CONV_CONTEXTS = ["causal", "chunk"]


def _encoder(seed=0, conv_context="causal"):
    torch.manual_seed(seed)
    config = EncoderConfig(d_model=32, num_layers=2, num_heads=2, ff_dim=64, conv_kernel=5,
                           max_relative_distance=10, dropout=0.0, causal=True,
                           conv_context=conv_context)
    encoder = ConformerEncoder(config).eval()
    # Non-zero position biases, so that a wrong relative position would show.
    for layer in encoder.layers:
        torch.nn.init.normal_(layer.attn.position_bias.table, std=0.5)
    return encoder


def chunkwise(encoder, features, num_frames, chunk_size, left_context, pad_value=-23.0):
    """Runs one or more streams chunk by chunk. features: (N, T, F)."""
    n, t_in, f = features.shape
    step = 4 * chunk_size
    window = step + SUBSAMPLING_LOOKAHEAD_FRAMES
    num_chunks = max(-(-(t_in - SUBSAMPLING_LOOKAHEAD_FRAMES) // step), 1)
    padded = torch.full((n, num_chunks * step + SUBSAMPLING_LOOKAHEAD_FRAMES, f), pad_value)
    padded[:, :t_in] = features
    state = encoder.init_state(n, left_context)
    outputs, lens = [], []
    for c in range(num_chunks):
        chunk = padded[:, c * step : c * step + window]
        chunk_lens = (num_frames - c * step).clamp(min=0, max=window)
        out, out_lens, state = encoder.streaming_forward(chunk, chunk_lens, state)
        outputs.append(out)
        lens.append(out_lens)
    return torch.cat(outputs, dim=1), torch.stack(lens).sum(0)


@pytest.mark.parametrize("conv_context", CONV_CONTEXTS)
@pytest.mark.parametrize("chunk_size,left_context", [(2, 4), (4, 8), (8, 16), (8, 32), (16, 32), (4, 0), (3, 5)])
def test_chunkwise_equals_simulated_streaming(chunk_size, left_context, conv_context):
    encoder = _encoder(conv_context=conv_context)
    torch.manual_seed(1)
    num_frames = torch.tensor([203, 150, 97])
    features = torch.randn(3, 203, 80)
    with torch.no_grad():
        simulated, sim_lens = encoder(features, num_frames, chunk_size, left_context)
        streamed, str_lens = chunkwise(encoder, features, num_frames, chunk_size, left_context)
    assert torch.equal(sim_lens, str_lens)
    for i in range(3):
        length = int(sim_lens[i])
        diff = (simulated[i, :length] - streamed[i, :length]).abs().max()
        assert diff < 1e-4, (i, float(diff))


@pytest.mark.parametrize("conv_context", CONV_CONTEXTS)
def test_without_the_chunk_mask_outputs_differ(conv_context):
    """The parity test can fail: full-context simulation is not what streaming computes."""
    encoder = _encoder(conv_context=conv_context)
    features = torch.randn(1, 120, 80)
    num_frames = torch.tensor([120])
    with torch.no_grad():
        full, lens = encoder(features, num_frames)
        streamed, _ = chunkwise(encoder, features, num_frames, 4, 8)
    assert (full[0, : int(lens[0])] - streamed[0, : int(lens[0])]).abs().max() > 1e-2


@pytest.mark.parametrize("conv_context", CONV_CONTEXTS)
def test_stacked_streams_equal_single_streams(conv_context):
    encoder = _encoder(conv_context=conv_context)
    features = torch.randn(2, 91, 80)
    state = encoder.init_state(2, 8)
    singles = unstack_states(state)
    chunk = features[:, :4 * 4 + 3]
    lens = torch.tensor([19, 19])
    with torch.no_grad():
        batch_out, _, batch_state = encoder.streaming_forward(chunk, lens, stack_states(singles))
        for i in range(2):
            out, _, single_state = encoder.streaming_forward(chunk[i : i + 1], lens[i : i + 1], singles[i])
            assert torch.allclose(out, batch_out[i : i + 1], atol=1e-5)
            assert torch.allclose(single_state.attn_cache, unstack_states(batch_state)[i].attn_cache, atol=1e-5)
            assert torch.allclose(single_state.conv_cache, unstack_states(batch_state)[i].conv_cache, atol=1e-5)


def test_chunk_mask_brute_force():
    mask = chunk_attention_mask(10, chunk_size=3, left_context=2)
    for q in range(10):
        for k in range(10):
            chunk = q // 3
            allowed = chunk * 3 - 2 <= k < chunk * 3 + 3
            assert bool(mask[q, k]) == (not allowed), (q, k)
    assert chunk_attention_mask(10, -1, -1) is None


def test_chunk_conv_parity_can_fail():
    """A chunk-wise pass whose convolution ignores the chunk end (the unmasked centred
    kernel, zeros instead of the next frames) differs from simulated chunk streaming: the
    equality above checks the look-ahead mask, not only the attention."""
    encoder = _encoder(conv_context="chunk")
    torch.manual_seed(1)
    features = torch.randn(1, 120, 80)
    num_frames = torch.tensor([120])
    with torch.no_grad():
        simulated, lens = encoder(features, num_frames, 4, 8)
        for layer in encoder.layers:
            layer.conv.mode = "centred"  # whole utterance: reads the next chunk's frames
        leaky, _ = encoder(features, num_frames, 4, 8)
    assert (simulated[0, : int(lens[0])] - leaky[0, : int(lens[0])]).abs().max() > 1e-3
