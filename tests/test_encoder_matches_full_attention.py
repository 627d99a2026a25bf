"""The encoder's fast attention (blocked over chunks for streaming, masks built once per batch,
fused QKV, channels-last front end) computes what the plain formulation computes: masked full
T x T attention with separate query and key/value projections, written out here from the
definitions (chunk c sees frames [c*C - L, (c+1)*C); padded keys are masked).

The reference uses checkpoint weights in the earlier parameter layout (``query``,
``key_value``), so the same tests check that such checkpoints load into the fused model."""

import pytest
import torch
from torch import nn

from icefall_kd.model.conformer import AttentionLayout, ConformerEncoder, EncoderConfig

TOLERANCE = 1e-5


def _config(causal):
    return EncoderConfig(d_model=32, num_layers=2, num_heads=2, ff_dim=64, conv_kernel=5,
                         max_relative_distance=10, dropout=0.0, causal=causal)


def _old_layout_state(causal, seed=0):
    """Random weights named as checkpoints were before the fused QKV projection."""
    torch.manual_seed(seed)
    state = ConformerEncoder(_config(causal)).state_dict()
    old = {}
    for name, value in state.items():
        value = torch.randn_like(value) * 0.3 if value.is_floating_point() else value
        if ".attn.qkv." in name:
            d = value.shape[0] // 3
            old[name.replace(".qkv.", ".query.")] = value[:d].clone()
            old[name.replace(".qkv.", ".key_value.")] = value[d:].clone()
        else:
            old[name] = value
    old["embed.feature_mean"] = torch.zeros(80)
    old["embed.feature_inv_std"] = torch.ones(80)
    return old


def _allowed(num_frames, chunk_size, left_context, shift=0):
    """(T, T) bool: query t may attend key s. ``shift`` moves the chunk boundaries (a
    control that must break the equality)."""
    t = torch.arange(num_frames).unsqueeze(1)
    s = torch.arange(num_frames).unsqueeze(0)
    if chunk_size <= 0:
        return torch.ones(num_frames, num_frames, dtype=torch.bool)
    start = ((t + shift) // chunk_size) * chunk_size - shift
    allowed = s < start + chunk_size
    if left_context >= 0:
        allowed &= s >= start - left_context
    return allowed


def reference_encoder(encoder, w, features, feature_lens, chunk_size, left_context, shift=0):
    """The plain formulation, from the old-layout weights ``w`` for the attention and the
    front end (the other modules are shared with ``encoder``)."""
    x = (features - w["embed.feature_mean"]) * w["embed.feature_inv_std"]
    x = torch.relu(nn.functional.conv2d(x.unsqueeze(1), w["embed.conv.0.weight"],
                                        w["embed.conv.0.bias"], stride=2))
    x = torch.relu(nn.functional.conv2d(x, w["embed.conv.2.weight"], w["embed.conv.2.bias"],
                                        stride=2))
    n, c, t, f = x.shape
    x = nn.functional.linear(x.transpose(1, 2).reshape(n, t, c * f), w["embed.out.weight"],
                             w["embed.out.bias"])
    lengths = ((feature_lens - 1) // 2 - 1) // 2
    pad = torch.arange(t).unsqueeze(0) >= lengths.unsqueeze(1)  # (N, T)
    masked = ~_allowed(t, chunk_size, left_context, shift).unsqueeze(0) | pad.unsqueeze(1)
    heads = encoder.config.num_heads
    hd = encoder.config.d_model // heads
    for i, layer in enumerate(encoder.layers):
        p = f"layers.{i}.attn."
        x = x + 0.5 * layer.ff1(x)
        a = layer.attn_norm(x)
        q = nn.functional.linear(a, w[p + "query.weight"], w[p + "query.bias"])
        k, v = nn.functional.linear(a, w[p + "key_value.weight"],
                                    w[p + "key_value.bias"]).chunk(2, dim=-1)
        q, k, v = (z.reshape(n, t, heads, hd).transpose(1, 2) for z in (q, k, v))
        scores = q @ k.transpose(-1, -2) / hd ** 0.5  # (N, H, T, T)
        max_d = encoder.config.max_relative_distance
        distance = (torch.arange(t).unsqueeze(0) - torch.arange(t).unsqueeze(1)).clamp(-max_d, max_d)
        scores = scores + w[p + "position_bias.table"][:, distance + max_d]
        # A query with no visible key (padding) gives zeros, with finite gradients.
        no_key = masked.all(-1, keepdim=True).unsqueeze(1)
        scores = scores.masked_fill(masked.unsqueeze(1), float("-inf")).masked_fill(no_key, 0.0)
        attn = (scores.softmax(-1) @ v) * ~no_key
        x = x + nn.functional.linear(attn.transpose(1, 2).reshape(n, t, -1),
                                     w[p + "out.weight"], w[p + "out.bias"])
        x = x + layer.conv(layer.conv_norm(x), pad)[0]
        x = x + 0.5 * layer.ff2(x)
        x = layer.final_norm(x)
    return x, lengths


def _inputs(seed=1):
    torch.manual_seed(seed)
    feature_lens = torch.tensor([243, 190, 101])  # unequal: padded keys in the batch
    return torch.randn(3, 243, 80), feature_lens


def _max_diff(a, b, lengths):
    return max(float((a[i, :n] - b[i, :n]).abs().max()) for i, n in enumerate(lengths.tolist()))


@pytest.mark.parametrize("causal,chunk_size,left_context", [
    (False, -1, -1),  # teacher: full attention
    (True, 8, 16),    # blocked
    (True, 3, 5),     # blocked, left context not a multiple of the chunk, partial last chunk
    (True, 7, 0),     # blocked, no left context
    (True, 16, -1),   # unlimited left context: masked full attention
    (True, 32, 64),   # a window longer than the utterances: masked full attention
])
def test_encoder_equals_plain_masked_attention(causal, chunk_size, left_context):
    old = _old_layout_state(causal)
    encoder = ConformerEncoder(_config(causal)).eval()
    encoder.load_state_dict(old)  # strict: every old name maps, nothing is left over
    features, feature_lens = _inputs()
    with torch.no_grad():
        out, lens = encoder(features, feature_lens, chunk_size, left_context)
        ref, ref_lens = reference_encoder(encoder, old, features, feature_lens, chunk_size,
                                          left_context)
    assert torch.equal(lens, ref_lens)
    assert _max_diff(out, ref, lens) < TOLERANCE


def test_streaming_draws_use_the_blocked_layout():
    """The cases above exercise the blocked path, not only the fallback."""
    lengths = torch.tensor([100, 81, 44])
    bias = ConformerEncoder(_config(True)).layers[0].attn.position_bias
    assert AttentionLayout.build(lengths, 100, 8, 16, bias).chunk_size == 8
    assert AttentionLayout.build(lengths, 100, 16, -1, bias).chunk_size == 0


def test_gradients_equal_plain_masked_attention():
    """Training computes the same gradients (the bias and mask are applied in place)."""
    old = _old_layout_state(True)
    encoder = ConformerEncoder(_config(True)).train()
    encoder.load_state_dict(old)
    reference_weights = {k: v.clone().requires_grad_(v.is_floating_point()) for k, v in old.items()}
    features, feature_lens = _inputs()
    out, lens = encoder(features, feature_lens, 3, 5)
    ref, _ = reference_encoder(encoder, reference_weights, features, feature_lens, 3, 5)
    valid = (torch.arange(out.shape[1]).unsqueeze(0) < lens.unsqueeze(1)).unsqueeze(-1)
    target = torch.randn_like(out) * valid
    # The modules both share (feed-forward, convolution, norms) get both gradients; the
    # ones compared below are each side's own.
    ((out * target).sum() + (ref * target).sum()).backward()
    attn = encoder.layers[1].attn
    grad_qkv = torch.cat([reference_weights["layers.1.attn.query.weight"].grad,
                          reference_weights["layers.1.attn.key_value.weight"].grad])
    assert (attn.qkv.weight.grad - grad_qkv).abs().max() < 1e-4
    assert (attn.position_bias.table.grad
            - reference_weights["layers.1.attn.position_bias.table"].grad).abs().max() < 1e-4
    assert (encoder.embed.conv[2].weight.grad
            - reference_weights["embed.conv.2.weight"].grad).abs().max() < 1e-4


def test_a_shifted_chunk_boundary_is_detected(shift=1):
    """Control: the comparison fails when the reference's chunks start one frame off."""
    old = _old_layout_state(True)
    encoder = ConformerEncoder(_config(True)).eval()
    encoder.load_state_dict(old)
    features, feature_lens = _inputs()
    with torch.no_grad():
        out, lens = encoder(features, feature_lens, 8, 16)
        ref, _ = reference_encoder(encoder, old, features, feature_lens, 8, 16, shift=shift)
    assert _max_diff(out, ref, lens) > 1e-3
