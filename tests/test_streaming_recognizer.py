"""Chunk-wise recognition from audio (online fbank, cached states, batched streams) against
simulated streaming on whole utterances, and what bad audio does."""

import numpy as np
import pytest
import soundfile as sf
import torch

from icefall_kd.data.fbank import make_fbank_extractor
from icefall_kd.decoding.search import greedy_search, modified_beam_search
from icefall_kd.model.transducer import build_transducer
from icefall_kd.streaming.recognizer import (
    BadAudio,
    StreamingConfig,
    StreamingRecognizer,
    partial_result_times,
)


def _model(seed=0, conv_context="causal"):
    torch.manual_seed(seed)
    model = build_transducer("tiny", vocab_size=50, causal=True, dropout=0.0,
                             conv_context=conv_context).eval()
    with torch.no_grad():  # sharper joiner: the random model emits tokens, ties are rare
        model.joiner.output_linear.weight.mul_(6)
        model.joiner.output_linear.bias[0] = 2.0
    return model


def _audio(tiny_corpus, count=8):
    flacs = sorted((tiny_corpus / "test-clean").rglob("*.flac"))[:count]
    return [(f.stem, sf.read(str(f), dtype="float32")[0]) for f in flacs]


def _simulated(model, samples, chunk, left, method="greedy_search"):
    feats = torch.from_numpy(make_fbank_extractor().extract(samples, 16000)).unsqueeze(0)
    with torch.no_grad():
        enc, lens = model.encoder(feats, torch.tensor([feats.shape[1]]), chunk, left)
        if method == "greedy_search":
            return greedy_search(model, enc, lens, 1)[0]
        return modified_beam_search(model, enc, lens, 4)[0]


def _chunkwise(recognizer, utterances, piece_samples=1234):
    # Odd piece sizes: audio arrives in pieces that do not line up with frames or chunks.
    return recognizer.recognize([a for _, a in utterances], [n for n, _ in utterances],
                                piece_samples)


@pytest.mark.parametrize("conv_context", ["causal", "chunk"])
@pytest.mark.parametrize("chunk,left", [(4, 16), (8, 32), (2, 8)])
def test_chunkwise_from_audio_equals_simulated_streaming(tiny_corpus, chunk, left, conv_context):
    model = _model(conv_context=conv_context)
    utterances = _audio(tiny_corpus)
    streams = _chunkwise(StreamingRecognizer(model, StreamingConfig(chunk, left)), utterances)
    same = 0
    total_tokens = 0
    for stream, (_, samples) in zip(streams, utterances):
        assert stream.done
        reference = _simulated(model, samples, chunk, left)
        same += stream.hyp.tokens == reference.tokens
        total_tokens += len(reference.tokens)
        if stream.hyp.tokens == reference.tokens:
            assert stream.hyp.timestamps == reference.timestamps
    assert total_tokens > 20  # the model does emit: the comparison means something
    assert same == len(utterances)


def test_beam_search_chunkwise_equals_simulated(tiny_corpus):
    model = _model(seed=1)
    utterances = _audio(tiny_corpus, count=4)
    config = StreamingConfig(4, 16, decoding_method="modified_beam_search")
    streams = _chunkwise(StreamingRecognizer(model, config), utterances)
    for stream, (_, samples) in zip(streams, utterances):
        assert stream.hyp.tokens == _simulated(model, samples, 4, 16, "modified_beam_search").tokens


def test_partial_result_times_keep_the_unchanged_prefix():
    assert partial_result_times([], [], [5, 6], 100) == [100, 100]
    assert partial_result_times([100, 100], [5, 6], [5, 6, 7], 200) == [100, 100, 200]
    # The best hypothesis changed its second token: from there on, the new time.
    assert partial_result_times([100, 100, 200], [5, 6, 7], [5, 9, 7, 8], 300) == [100, 300, 300, 300]


@pytest.mark.parametrize("method", ["greedy_search", "modified_beam_search"])
def test_tokens_are_never_available_before_their_audio(tiny_corpus, method):
    model = _model()
    utterances = _audio(tiny_corpus, count=4)
    config = StreamingConfig(4, 16, decoding_method=method)
    emitted = 0
    for stream in _chunkwise(StreamingRecognizer(model, config), utterances):
        assert len(stream.token_available_samples) == len(stream.hyp.timestamps)  # one per token
        emitted += len(stream.hyp.tokens)
        for frame, needed in zip(stream.hyp.timestamps, stream.token_available_samples):
            # Encoder frame t reads feature frames up to 4t + 6.
            assert needed >= min((4 * frame + 6) * 160 + 280, stream.samples_received)
            assert needed <= stream.samples_received
    assert emitted > 10  # tokens were emitted: the bounds above were checked


def test_bad_audio_gives_clear_errors_and_short_audio_a_result():
    model = _model()
    recognizer = StreamingRecognizer(model, StreamingConfig(4, 16))
    with pytest.raises(BadAudio, match="8000 Hz"):
        recognizer.create_stream("a").accept_waveform(8000, np.zeros(800, np.float32))
    with pytest.raises(BadAudio, match="NaN"):
        recognizer.create_stream("b").accept_waveform(16000, np.array([0.1, np.nan], np.float32))
    with pytest.raises(BadAudio, match="32768"):
        recognizer.create_stream("c").accept_waveform(16000, np.full(100, 3000.0, np.float32))
    empty, tiny, short = (recognizer.create_stream(n) for n in ("empty", "tiny", "short"))
    tiny.accept_waveform(16000, np.zeros(300, np.float32))
    short.accept_waveform(16000, 0.1 * np.random.default_rng(0).standard_normal(1600).astype(np.float32))
    for s in (empty, tiny, short):
        s.input_finished()
    recognizer.decode_until_done([empty, tiny, short])
    assert all(s.done for s in (empty, tiny, short))
    assert empty.hyp.tokens == [] and tiny.hyp.tokens == []
    with pytest.raises(BadAudio, match="after input_finished"):
        empty.accept_waveform(16000, np.zeros(10, np.float32))


def test_full_context_model_is_refused():
    model = build_transducer("tiny", vocab_size=50, causal=False)
    with pytest.raises(ValueError, match="streaming"):
        StreamingRecognizer(model, StreamingConfig(4, 16))
