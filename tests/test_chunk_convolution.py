"""Chunk-aware convolution (``conv_context="chunk"``): each frame's centred depthwise kernel
reads the past and the rest of its own chunk, never a later chunk; checked against a plain
loop, for leakage across chunk boundaries (module and whole encoder), against the teacher's
convolution at full context; and the setting's path through flags and checkpoints."""

from types import SimpleNamespace

import pytest
import torch

from icefall_kd.model.conformer import (
    ConformerEncoder,
    ConvolutionModule,
    EncoderConfig,
    chunk_conv_future_keep,
)
from icefall_kd.training.checkpoint import save_checkpoint

KERNEL = 7  # reach 3: look-ahead taps cross the boundary for chunks of 1 to 4 frames


def _module(mode: str, seed: int = 0, d_model: int = 8) -> ConvolutionModule:
    torch.manual_seed(seed)
    module = ConvolutionModule(d_model, KERNEL, mode).eval()
    with torch.no_grad():
        module.depthwise.bias.normal_()
    return module


def brute_force_chunk_depthwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                                chunk_size: int) -> torch.Tensor:
    """The definition, one output at a time. x: (N, D, T); weight (D, 1, K); bias (D,).
    out[n, d, t] = bias[d] + sum_k weight[d, 0, k] * x[n, d, t + k - R] over the frames
    t + k - R in [0, T) and before the end of t's chunk."""
    n, d, t_len = x.shape
    reach = (weight.shape[2] - 1) // 2
    out = torch.zeros_like(x)
    for t in range(t_len):
        chunk_end = (t // chunk_size + 1) * chunk_size
        for k in range(weight.shape[2]):
            s = t + k - reach
            if 0 <= s < t_len and s < chunk_end:
                out[:, :, t] += weight[:, 0, k] * x[:, :, s]
        out[:, :, t] += bias
    return out


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 4, 8])
def test_vectorised_chunk_conv_equals_brute_force_loop(chunk_size):
    module = _module("chunk")
    torch.manual_seed(1)
    x = torch.randn(2, 8, 23)  # 23: the last chunk is partial for every size but 1
    keep = chunk_conv_future_keep(23, chunk_size, module.reach)
    with torch.no_grad():
        fast = module.chunk_depthwise(x, keep)
        slow = brute_force_chunk_depthwise(x, module.depthwise.weight, module.depthwise.bias,
                                           chunk_size)
        # Control: the comparison can fail; without the mask it is the centred convolution.
        unmasked = module.depthwise(torch.nn.functional.pad(x, (module.reach, module.reach)))
    assert (fast - slow).abs().max() < 1e-5
    assert (unmasked - slow).abs().max() > 1e-2


def test_future_keep_brute_force():
    keep = chunk_conv_future_keep(10, chunk_size=4, reach=3)
    assert keep.shape == (3, 10)
    for j in range(1, 4):
        for t in range(10):
            assert bool(keep[j - 1, t]) == ((t + j) // 4 == t // 4), (j, t)
    assert chunk_conv_future_keep(10, -1, 3) is None


@pytest.mark.parametrize("chunk_size", [2, 4, 5])
def test_conv_module_output_of_a_chunk_ignores_later_chunks(chunk_size):
    """Perturbing the frames after a chunk's last frame leaves the chunk's outputs as they
    were; perturbing its last frame changes earlier frames of the same chunk (look-ahead),
    which the causal convolution's do not."""
    chunk_mod, causal_mod = _module("chunk"), _module("causal")
    torch.manual_seed(2)
    x = torch.randn(1, 20, 8)
    end = 2 * chunk_size  # the end of the second chunk
    keep = chunk_conv_future_keep(20, chunk_size, chunk_mod.reach)
    later, inside = x.clone(), x.clone()
    later[:, end:] += 5.0 * torch.randn(1, 20 - end, 8)
    inside[:, end - 1] += 5.0
    with torch.no_grad():
        def run(module, inputs):
            return module(inputs, None, future_keep=keep)[0]
        base = run(chunk_mod, x)
        assert torch.equal(run(chunk_mod, later)[:, :end], base[:, :end])
        assert (run(chunk_mod, later)[:, end:] - base[:, end:]).abs().max() > 1e-2
        changed = (run(chunk_mod, inside) - base).abs().amax(dim=2)[0]  # (T,)
        assert changed[end - 2] > 1e-3  # the frame before, same chunk, sees it
        assert changed[: end - chunk_size].max() == 0  # the chunk before does not
        causal_base = run(causal_mod, x)
        causal_changed = (run(causal_mod, inside) - causal_base).abs().amax(dim=2)[0]
        assert causal_changed[: end - 1].max() == 0


def test_chunk_mode_at_full_context_is_the_teachers_convolution():
    """No chunks (-1): the centred kernel, exactly as the full-context encoder's module."""
    chunk_mod, centred = _module("chunk"), _module("centred")
    centred.load_state_dict(chunk_mod.state_dict())
    x = torch.randn(2, 17, 8)
    pad_mask = torch.zeros(2, 17, dtype=torch.bool)
    pad_mask[1, 12:] = True
    with torch.no_grad():
        a, _ = chunk_mod(x, pad_mask, future_keep=None)
        b, _ = centred(x, pad_mask)
        # A single chunk as long as the utterance is full context too.
        c, _ = chunk_mod(x, pad_mask, future_keep=chunk_conv_future_keep(17, 17, chunk_mod.reach))
    assert torch.equal(a, b)
    assert (a - c).abs().max() < 1e-5


def _encoder(conv_context: str) -> ConformerEncoder:
    torch.manual_seed(0)
    config = EncoderConfig(d_model=32, num_layers=2, num_heads=2, ff_dim=64, conv_kernel=KERNEL,
                           max_relative_distance=10, dropout=0.0, causal=True,
                           conv_context=conv_context)
    return ConformerEncoder(config).eval()


def test_encoder_chunk_outputs_ignore_later_audio_in_simulated_streaming():
    """Whole-encoder simulated streaming, chunk C: encoder frame t reads feature frames up
    to 4t + 6, so changing every feature frame after those of a chunk's last encoder frame
    leaves that chunk (and the ones before) unchanged. Control: changing the last feature
    frame that chunk reads changes earlier frames of the same chunk."""
    chunk, left = 4, 8
    encoder = _encoder("chunk")
    torch.manual_seed(3)
    features = torch.randn(1, 120, 80)
    lens = torch.tensor([120])
    end = 2 * chunk  # encoder frames [0, end) are the first two chunks
    last_read = 4 * (end - 1) + 6  # the last feature frame encoder frame end - 1 reads
    later, inside = features.clone(), features.clone()
    later[:, last_read + 1 :] += 3.0 * torch.randn(1, 120 - last_read - 1, 80)
    inside[:, last_read] += 3.0
    with torch.no_grad():
        base, _ = encoder(features, lens, chunk, left)
        moved_later, _ = encoder(later, lens, chunk, left)
        moved_inside, _ = encoder(inside, lens, chunk, left)
    assert torch.equal(moved_later[:, :end], base[:, :end])
    assert (moved_later[:, end:] - base[:, end:]).abs().max() > 1e-2
    assert (moved_inside[:, end - chunk : end - 1] - base[:, end - chunk : end - 1]).abs().max() > 1e-3
    # Control: the same encoder with an unmasked centred kernel does leak across chunks.
    for layer in encoder.layers:
        layer.conv.mode = "centred"
    with torch.no_grad():
        leaky_base, _ = encoder(features, lens, chunk, left)
        leaky_later, _ = encoder(later, lens, chunk, left)
    assert (leaky_later[:, :end] - leaky_base[:, :end]).abs().max() > 1e-3


def test_causal_and_chunk_encoders_share_weights_but_differ():
    """One state dict loads into either mode (the depthwise weight is the same), and the
    modes compute different functions at a chunk size (the option does something)."""
    causal, chunk = _encoder("causal"), _encoder("chunk")
    chunk.load_state_dict(causal.state_dict())
    features = torch.randn(1, 80, 80)
    with torch.no_grad():
        a, _ = causal(features, torch.tensor([80]), 4, 8)
        b, _ = chunk(features, torch.tensor([80]), 4, 8)
    assert (a - b).abs().max() > 1e-2


def test_bad_conv_context_is_refused():
    with pytest.raises(ValueError, match="conv_context must be one of"):
        EncoderConfig(causal=True, conv_context="lookahead")


def _save(path, model):
    state = model.state_dict()
    save_checkpoint(path, {"model": state, "model_avg": state,
                           "model_config": model.config.to_dict(), "batch_idx_train": 1,
                           "epoch": 1})


def test_conv_context_flag_is_stored_and_a_contradicting_init_from_is_refused(tmp_path, capsys):
    """--conv-context goes into the model config (and the checkpoint); a run continued from a
    chunk-conv model keeps it without the flag, and refuses --conv-context causal."""
    from icefall_kd.model.transducer import build_transducer
    from icefall_kd.recipes import train_transducer

    model = build_transducer("tiny", 50, causal=True, conv_context="chunk")
    _save(tmp_path / "exp" / "epoch-1.pt", model)
    parser = train_transducer.build_parser("", streaming=True)
    lang = tmp_path / "lang"  # a 50-token table: --init-from checks the vocabulary's size
    lang.mkdir()
    (lang / "tokens.txt").write_text("".join(f"t{i} {i}\n" for i in range(50)))
    base = ["--exp-dir", "e", "--init-from", str(tmp_path / "exp"), "--init-epoch", "1",
            "--init-use-averaged-model", "false", "--lang-dir", str(lang)]
    continued = train_transducer.init_from_checkpoint(parser.parse_args(base), causal=True)
    assert continued.config.encoder.conv_context == "chunk"
    assert all(layer.conv.mode == "chunk" for layer in continued.encoder.layers)
    with pytest.raises(SystemExit, match="holds a model with --conv-context chunk; this command "
                       "asks for causal"):
        train_transducer.init_from_checkpoint(
            parser.parse_args(base + ["--conv-context", "causal"]), causal=True)
    with pytest.raises(SystemExit):
        parser.parse_args(["--exp-dir", "e", "--conv-context", "lookahead"])
    assert "invalid choice: 'lookahead'" in capsys.readouterr().err
    teacher_help = train_transducer.build_parser("", streaming=False).format_help()
    assert "--conv-context" not in teacher_help  # the teacher's kernel is always centred


def test_checkpoint_without_conv_context_resumes_and_loads_as_causal(tmp_path):
    from icefall_kd.model.transducer import TransducerConfig, build_transducer
    from icefall_kd.training.trainer import Trainer

    old = build_transducer("tiny", 50, causal=True).config.to_dict()
    del old["encoder"]["conv_context"]  # as written before the field existed
    assert TransducerConfig.from_dict(old).encoder.conv_context == "causal"
    state = {"model_config": old}
    causal_now = SimpleNamespace(model_config=build_transducer("tiny", 50, True).config.to_dict(),
                                 vocabulary=None, config=SimpleNamespace(optimizer="adamw"))
    assert Trainer._check_model_config(causal_now, tmp_path / "c.pt", state) == state
    chunk_now = SimpleNamespace(model_config=build_transducer(
        "tiny", 50, True, conv_context="chunk").config.to_dict(), vocabulary=None,
        config=SimpleNamespace(optimizer="adamw"))
    with pytest.raises(SystemExit, match="encoder.conv_context: 'causal' in the checkpoint, "
                       "'chunk' now"):
        Trainer._check_model_config(chunk_now, tmp_path / "c.pt", state)
