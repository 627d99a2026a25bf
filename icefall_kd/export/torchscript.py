"""TorchScript export: one file holding the encoder, decoder and joiner with sherpa-onnx's
interfaces (:mod:`~icefall_kd.export.wrappers`), plus the constants a runtime needs.

The decoder and joiner are scripted. The encoder is traced: scripting it would need the
model rewritten for TorchScript (a layer returns a tensor or a tuple depending on whether
caches are passed, ``forward`` has an optional extra output, the streaming state is a
dataclass). Tracing is exact here because the only Python control flow depends on
constants of the export (chunk size, left context, full context or not): batch size and,
for the full-context encoder, the number of frames stay dynamic; :func:`compare_with_eager`
checks both on inputs other than the ones traced with.

Loading: ``m = torch.jit.load(path)``; ``m.encoder(...)``, ``m.decoder(y)``,
``m.joiner(encoder_out, decoder_out)``; constants ``m.streaming``, ``m.chunk_size``,
``m.left_context``, ``m.T``, ``m.decode_chunk_len``, ``m.context_size``, ``m.vocab_size``.
"""

# No "from __future__ import annotations": TorchScript must read the Final[...] annotations.
import warnings
from pathlib import Path
from typing import Dict

import torch
from torch import nn

from icefall_kd.export.wrappers import (
    DecoderForSherpa,
    JoinerForSherpa,
    OfflineEncoderForSherpa,
    StreamingEncoderForSherpa,
)
from icefall_kd.model.transducer import Transducer
from icefall_kd.utils import atomic_output


class JitTransducer(nn.Module):
    """Container scripted around the traced encoder and the scripted decoder and joiner."""

    streaming: torch.jit.Final[bool]
    chunk_size: torch.jit.Final[int]
    left_context: torch.jit.Final[int]
    T: torch.jit.Final[int]
    decode_chunk_len: torch.jit.Final[int]
    context_size: torch.jit.Final[int]
    vocab_size: torch.jit.Final[int]

    def __init__(self, encoder: nn.Module, decoder: nn.Module, joiner: nn.Module,
                 model: Transducer, chunk_size: int, left_context: int) -> None:
        super().__init__()
        self.encoder, self.decoder, self.joiner = encoder, decoder, joiner
        self.streaming = chunk_size > 0
        self.chunk_size = chunk_size
        self.left_context = left_context
        self.decode_chunk_len = 4 * chunk_size if self.streaming else -1
        self.T = self.decode_chunk_len + 3 if self.streaming else -1
        self.context_size = model.config.context_size
        self.vocab_size = model.config.vocab_size


def _trace(module: nn.Module, example_inputs) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        # The tracer warns where Python reads a tensor's shape (the fixed left context) and
        # that torch.jit is deprecated; compare_with_eager is the check that matters.
        warnings.simplefilter("ignore")
        return torch.jit.trace(module.eval(), example_inputs, check_trace=False)


def _script(module: nn.Module) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        return torch.jit.script(module.eval())


@torch.no_grad()
def to_torchscript(model: Transducer, chunk_size: int = -1,
                   left_context: int = -1) -> torch.jit.ScriptModule:
    """Streaming model with ``chunk_size``/``left_context`` > 0 (encoder traced for that
    chunk), or full-context model with ``chunk_size`` <= 0."""
    model = model.eval()
    if chunk_size > 0:
        encoder = StreamingEncoderForSherpa(model, chunk_size, left_context)
        # Batch 2 so that no size-1 batch dimension gets baked into a reshape.
        traced = _trace(encoder, encoder.example_inputs(batch_size=2))
    else:
        if model.causal:
            raise ValueError("a streaming model needs --chunk-size and --left-context")
        encoder = OfflineEncoderForSherpa(model)
        traced = _trace(encoder, encoder.example_inputs())
    container = JitTransducer(traced, _script(DecoderForSherpa(model)),
                              _script(JoinerForSherpa(model)), model, chunk_size, left_context)
    return _script(container)


def save_torchscript(module: torch.jit.ScriptModule, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        module.save(str(tmp))


@torch.no_grad()
def compare_with_eager(jit_model: torch.jit.ScriptModule, model: Transducer,
                       num_chunks: int = 4, batch_size: int = 3, seed: int = 0
                       ) -> Dict[str, float]:
    """Max absolute differences between the TorchScript parts and the eager model, on
    inputs other than the traced ones: a batch of ``batch_size``; streaming: ``num_chunks``
    chunks with states carried from the TorchScript outputs (the eager side carries its
    own); full context: a padded batch of a length the encoder was not traced with."""
    generator = torch.Generator().manual_seed(seed)
    model = model.eval()
    diffs: Dict[str, float] = {}
    if jit_model.streaming:
        eager = StreamingEncoderForSherpa(model, jit_model.chunk_size, jit_model.left_context)
        x, attn, conv, processed = eager.example_inputs(batch_size)
        jit_attn, jit_conv = attn, conv
        worst = 0.0
        for _ in range(num_chunks):
            x = torch.randn(x.shape, generator=generator)
            out, attn, conv = eager(x, attn, conv, processed)
            jit_out, jit_attn, jit_conv = jit_model.encoder(x, jit_attn, jit_conv, processed)
            worst = max(worst, (out - jit_out).abs().max().item(),
                        (attn - jit_attn).abs().max().item(), (conv - jit_conv).abs().max().item())
            processed = processed + jit_model.decode_chunk_len
        diffs["encoder"] = worst
    else:
        eager = OfflineEncoderForSherpa(model)
        lengths = torch.randint(60, 160, (batch_size,), generator=generator)
        lengths[0] = 173  # longest first; not the traced length
        x = torch.randn(batch_size, int(lengths.max()), model.config.encoder.feature_dim,
                        generator=generator)
        out, out_lens = eager(x, lengths)
        jit_out, jit_lens = jit_model.encoder(x, lengths)
        if not torch.equal(out_lens, jit_lens):
            raise AssertionError(f"encoder_out_lens differ: {out_lens} vs {jit_lens}")
        mask = torch.arange(out.shape[1]).unsqueeze(0) < out_lens.unsqueeze(1)
        diffs["encoder"] = (out - jit_out)[mask].abs().max().item()
    vocab = model.config.vocab_size
    y = torch.randint(0, vocab, (batch_size, model.config.context_size), generator=generator)
    y[0, :-1] = -1  # the start-of-utterance context
    diffs["decoder"] = (DecoderForSherpa(model)(y) - jit_model.decoder(y)).abs().max().item()
    enc = torch.randn(batch_size, model.config.joiner_dim, generator=generator)
    dec = torch.randn(batch_size, model.config.joiner_dim, generator=generator)
    logits = JoinerForSherpa(model)(enc, dec)
    diffs["joiner"] = (logits - jit_model.joiner(enc, dec)).abs().max().item()
    return diffs
