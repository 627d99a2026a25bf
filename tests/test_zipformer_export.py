"""A streaming Zipformer exported to sherpa-onnx's ``zipformer2`` contract: onnxruntime
against PyTorch over carried states (with a control that the states matter), and the real
sherpa-onnx runtime's greedy hypotheses identical to PyTorch chunk-wise greedy search fed as
sherpa-onnx feeds it (with a control that another model's hypotheses differ)."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from lhotse import CutSet, Recording, RecordingSet

from icefall_kd.export.sherpa_parity import pytorch_sherpa_schedule
from icefall_kd.export.sherpa_runtime import run_in_subprocess
from icefall_kd.export.zipformer_onnx import (
    ZipformerStreamingEncoderForSherpa,
    export_streaming_zipformer_onnx,
    state_names,
)
from icefall_kd.model.transducer import build_transducer
from icefall_kd.streaming.recognizer import StreamingConfig

CHUNK, LEFT, VOCAB = 4, 16, 50


def _model(seed=0):
    torch.manual_seed(seed)
    model = build_transducer("zipformer-tiny", VOCAB, causal=True, dropout=0.0).eval()
    with torch.no_grad():  # sharper joiner: the random model emits tokens, ties are rare
        model.joiner.output_linear.weight.mul_(6)
        model.joiner.output_linear.bias[0] = 2.0
        model.joiner.output_linear.bias[2] = -50.0  # sherpa-onnx reads <unk> as blank
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("zipformer-onnx")
    tokens = out / "tokens-src.txt"
    tokens.write_text("<blk> 0\n<sos/eos> 1\n<unk> 2\n"
                      + "".join(f"▁t{i} {i}\n" for i in range(3, VOCAB)))
    model = _model()
    files = export_streaming_zipformer_onnx(model, out, "test", CHUNK, LEFT, tokens,
                                            quantize=False)
    return model, files["fp32"]


def test_contract_names_order_and_metadata(exported):
    model, files = exported
    proto = onnx.load(str(files.encoder))
    names = [i.name for i in proto.graph.input]
    assert names == ["x"] + state_names(model)
    assert names[1:7] == ["cached_key_0", "cached_nonlin_attn_0", "cached_val1_0",
                          "cached_val2_0", "cached_conv1_0", "cached_conv2_0"]
    assert [o.name for o in proto.graph.output] == ["encoder_out"] + [f"new_{n}" for n in names[1:]]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["model_type"] == "zipformer2"
    assert meta["T"] == str(4 * CHUNK + 3) and meta["decode_chunk_len"] == str(4 * CHUNK)
    assert meta["left_context_len"] == "32,16,8,16"  # 2 x 16 frames at 50 Hz / (1, 2, 4, 2)
    assert meta["num_encoder_layers"] == "1,1,1,1"


def test_onnx_equals_pytorch_over_carried_states(exported):
    model, files = exported
    wrapper = ZipformerStreamingEncoderForSherpa(model, CHUNK, LEFT)
    session = ort.InferenceSession(str(files.encoder))
    names = [i.name for i in session.get_inputs()]
    torch.manual_seed(7)
    states = wrapper.init_states(2)
    onnx_states = [s.numpy() for s in states]
    fresh = [s.numpy() for s in wrapper.init_states(2)]
    for step in range(6):
        x = torch.randn(2, 4 * CHUNK + 3, 80)
        with torch.no_grad():
            reference = wrapper(x, *states)
        got = session.run(None, dict(zip(names, [x.numpy()] + onnx_states)))
        np.testing.assert_allclose(got[0], reference[0].numpy(), atol=1e-4, rtol=1e-4)
        for a, b in zip(got[1:], reference[1:]):
            np.testing.assert_allclose(a, b.numpy(), atol=1e-4, rtol=1e-4)
        if step >= 1:  # control: with fresh states instead of carried ones the output differs
            reset = session.run(None, dict(zip(names, [x.numpy()] + fresh)))
            assert np.abs(reset[0] - got[0]).max() > 1e-3
        states, onnx_states = list(reference[1:]), got[1:]


def test_sherpa_onnx_hypotheses_equal_pytorch(exported, tiny_corpus, tmp_path):
    model, files = exported
    flacs = sorted((tiny_corpus / "test-clean").rglob("*.flac"))[:6]
    recordings = RecordingSet.from_recordings(Recording.from_file(f) for f in flacs)
    cuts_path = tmp_path / "cuts.jsonl.gz"
    cuts = CutSet.from_manifests(recordings=recordings)
    cuts.to_file(cuts_path)
    audios = [c.load_audio()[0].astype(np.float32) for c in cuts]
    config = StreamingConfig(CHUNK, LEFT)
    reference = pytorch_sherpa_schedule(model, config, audios)
    result = run_in_subprocess({"mode": "online", "files": files.as_dict(), "cuts": str(cuts_path),
                                "num_threads": 1, "tail_padding_samples": config.tail_padding_samples,
                                "num_streams": 4}, timeout=300)
    got = [u["token_ids"] for u in result["utterances"]]
    assert sum(len(r) for r in reference) > 20  # the model does emit
    assert got == reference
    # Control: another model's hypotheses differ, so equality above is not vacuous.
    assert pytorch_sherpa_schedule(_model(seed=1), config, audios) != reference


def test_the_recipe_check_passes_and_catches_a_wrong_model(exported):
    """check_streaming_zipformer_onnx (onnx_check.py, export_onnx.py) over mixed stream
    positions; control: a model with other weights fails it."""
    from icefall_kd.export.zipformer_onnx import (
        check_streaming_encoder_file,
        check_streaming_zipformer_onnx,
    )

    model, files = exported
    assert check_streaming_encoder_file(files.encoder)["model_type"] == "zipformer2"
    result = check_streaming_zipformer_onnx(model, files, num_chunks=4)
    assert result.ok, result
    assert not check_streaming_zipformer_onnx(_model(seed=1), files, num_chunks=2).ok


def test_offline_zipformer_onnx_and_sherpa_offline_equal_pytorch(tiny_corpus, tmp_path):
    """The full-context (teacher) Zipformer for sherpa-onnx's OfflineRecognizer: onnxruntime
    against PyTorch on a padded batch of random lengths (odd ones included: the stacks pad to
    a multiple of their factors), then sherpa-onnx greedy search against PyTorch's."""
    from icefall_kd.export.onnx_export import export_offline_onnx
    from icefall_kd.export.onnx_parity import check_offline_onnx
    from icefall_kd.export.sherpa_parity import pytorch_offline

    torch.manual_seed(0)
    model = build_transducer("zipformer-tiny", VOCAB, causal=False, dropout=0.0).eval()
    with torch.no_grad():
        model.joiner.output_linear.weight.mul_(6)
        model.joiner.output_linear.bias[0] = 2.0
        model.joiner.output_linear.bias[2] = -50.0
    tokens = tmp_path / "tokens-src.txt"
    tokens.write_text("<blk> 0\n<sos/eos> 1\n<unk> 2\n"
                      + "".join(f"▁t{i} {i}\n" for i in range(3, VOCAB)))
    files = export_offline_onnx(model, tmp_path, "offline", tokens, quantize=False)["fp32"]
    for seed in range(3):
        result = check_offline_onnx(model, files, seed=seed)
        assert result.ok, result
    flacs = sorted((tiny_corpus / "test-clean").rglob("*.flac"))[:6]
    cuts = CutSet.from_manifests(recordings=RecordingSet.from_recordings(
        Recording.from_file(f) for f in flacs))
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    audios = [c.load_audio()[0].astype(np.float32) for c in cuts]
    reference = pytorch_offline(model, audios)
    result = run_in_subprocess({"mode": "offline", "files": files.as_dict(),
                                "cuts": str(tmp_path / "cuts.jsonl.gz"), "num_threads": 1,
                                "tail_padding_samples": 0, "num_streams": 1}, timeout=300)
    assert sum(len(r) for r in reference) > 20
    assert [u["token_ids"] for u in result["utterances"]] == [list(r) for r in reference]
