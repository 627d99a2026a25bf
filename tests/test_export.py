"""Export for deployment: TorchScript against eager PyTorch, ONNX against PyTorch over chunks
with carried states, the contract checker's refusals, and decoding in the real sherpa-onnx
runtime (a child process) against PyTorch greedy search on the tiny corpus."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from lhotse import CutSet, load_manifest

from icefall_kd.data.bpe import train_bpe_model, write_transcript_words
from icefall_kd.data.librispeech import prepare_librispeech_part
from icefall_kd.export.contract import (
    STREAMING_ENCODER,
    ExportContractError,
    validate_graph,
    validate_metadata,
    validate_tokens,
)
from icefall_kd.export.onnx_parity import check_streaming_onnx
from icefall_kd.export.onnx_export import export_streaming_onnx
from icefall_kd.export.sherpa_parity import pytorch_offline, pytorch_sherpa_schedule
from icefall_kd.export.sherpa_runtime import SherpaRuntimeError, run_in_subprocess
from icefall_kd.export.torchscript import compare_with_eager, to_torchscript
from icefall_kd.model.transducer import Transducer, TransducerConfig, build_transducer
from icefall_kd.recipes import export, export_onnx, onnx_check, sherpa_decode
from icefall_kd.streaming.recognizer import StreamingConfig
from icefall_kd.training.checkpoint import save_checkpoint

# torch.jit is deprecated in torch 2.13 but is what TorchScript users load with.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")

CHUNK, LEFT = 4, 16
NUM_CUTS = 6
CKPT = ["--epoch", "1", "--avg", "1", "--use-averaged-model", "false"]


def _model(vocab_size: int, causal: bool, seed: int, conv_context: str = "causal") -> Transducer:
    torch.manual_seed(seed)
    model = build_transducer("tiny", vocab_size=vocab_size, causal=causal, dropout=0.0,
                             conv_context=conv_context).eval()
    with torch.no_grad():
        # A sharper joiner: the random model emits tokens and argmax ties are rare.
        model.joiner.output_linear.weight.mul_(6)
        model.joiner.output_linear.bias[0] = 2.0
        # sherpa-onnx treats <unk> as blank, PyTorch search does not: keep it out.
        model.joiner.output_linear.bias[2] = -100.0
    return model


@pytest.fixture(scope="module")
def recipe(tiny_corpus, tmp_path_factory) -> Path:
    """data/lang_bpe_200 and data/fbank/librispeech_cuts_test-clean.jsonl.gz (the first
    cuts, audio only) of the tiny corpus, without computing features."""
    root = tmp_path_factory.mktemp("export-recipe")
    texts = [line.split(" ", 1)[1].strip() for path in sorted(tiny_corpus.rglob("*.trans.txt"))
             for line in open(path)]
    write_transcript_words(texts, root / "words.txt")
    train_bpe_model(root / "words.txt", root / "data" / "lang_bpe_200", 200)
    prepare_librispeech_part(tiny_corpus, "test-clean", root / "data" / "manifests")
    manifests = root / "data" / "manifests"
    cuts = CutSet.from_manifests(
        recordings=load_manifest(manifests / "librispeech_recordings_test-clean.jsonl.gz"),
        supervisions=load_manifest(manifests / "librispeech_supervisions_test-clean.jsonl.gz"),
    ).subset(first=NUM_CUTS)
    (root / "data" / "fbank").mkdir()
    cuts.to_file(root / "data" / "fbank" / "librispeech_cuts_test-clean.jsonl.gz")
    return root


def _exp_dir(root: Path, name: str, model: Transducer) -> Path:
    exp_dir = root / name
    save_checkpoint(exp_dir / "epoch-1.pt",
                    {"model": model.state_dict(), "model_config": model.config.to_dict()})
    return exp_dir


def _exported_student(recipe: Path, name: str, conv_context: str):
    """A streaming model in an exp folder, exported by export_onnx.py (fp32 and int8)."""
    model = _model(200, causal=True, seed=0, conv_context=conv_context)
    exp_dir = _exp_dir(recipe, name, model)
    files = export_onnx.main(streaming=True, argv=[
        "--exp-dir", str(exp_dir), *CKPT, "--chunk-size", str(CHUNK),
        "--left-context", str(LEFT), "--lang-dir", str(recipe / "data" / "lang_bpe_200")])
    return model, exp_dir, files


@pytest.fixture(scope="module")
def student(recipe):
    return _exported_student(recipe, "student-exp", "causal")


@pytest.fixture(scope="module")
def chunk_conv_student(recipe):
    """The same, with the chunk-aware convolution (``--conv-context chunk``)."""
    return _exported_student(recipe, "chunk-conv-student-exp", "chunk")


@pytest.fixture(scope="module")
def teacher(recipe):
    model = _model(200, causal=False, seed=1)
    exp_dir = _exp_dir(recipe, "teacher-exp", model)
    files = export_onnx.main(streaming=False, argv=[
        "--exp-dir", str(exp_dir), *CKPT, "--lang-dir", str(recipe / "data" / "lang_bpe_200")])
    return model, exp_dir, files


def _audios(recipe):
    cuts = load_manifest(recipe / "data" / "fbank" / "librispeech_cuts_test-clean.jsonl.gz")
    return [c.id for c in cuts], [c.load_audio()[0] for c in cuts]


# ----------------------------------------------------------------------------- TorchScript
def test_torchscript_files_match_eager_model(recipe):
    student_model = _model(200, causal=True, seed=0)
    teacher_model = _model(200, causal=False, seed=1)
    for model, streaming, name in ((student_model, True, "s"), (teacher_model, False, "t")):
        exp_dir = _exp_dir(recipe, f"jit-{name}", model)
        argv = ["--exp-dir", str(exp_dir), *CKPT]
        if streaming:
            argv += ["--chunk-size", str(CHUNK), "--left-context", str(LEFT)]
        path = export.main(streaming=streaming, argv=argv + ["--jit", "true"])
        loaded = torch.jit.load(str(path))
        # Other batch sizes and (full context) lengths than the traced ones.
        diffs = compare_with_eager(loaded, model, num_chunks=5, batch_size=3, seed=7)
        assert max(diffs.values()) < 1e-5, diffs
        assert loaded.streaming == streaming
        if streaming:
            assert (loaded.T, loaded.decode_chunk_len) == (4 * CHUNK + 3, 4 * CHUNK)
        pretrained = export.main(streaming=streaming, argv=argv)
        state = torch.load(pretrained, weights_only=False)
        rebuilt = Transducer(TransducerConfig.from_dict(state["model_config"]))
        rebuilt.load_state_dict(state["model"])
        assert all(torch.equal(a, b) for a, b in
                   zip(rebuilt.state_dict().values(), model.state_dict().values()))


def test_torchscript_chunk_conv_model_matches_eager():
    """The traced chunk-aware encoder (look-ahead zeros padded in the graph) over chunks."""
    model = _model(200, causal=True, seed=0, conv_context="chunk")
    diffs = compare_with_eager(to_torchscript(model, CHUNK, LEFT), model, num_chunks=5,
                               batch_size=3, seed=7)
    assert max(diffs.values()) < 1e-5, diffs


def test_streaming_export_refuses_full_context_model(recipe):
    teacher_model = _model(200, causal=False, seed=1)
    exp_dir = _exp_dir(recipe, "wrong-kind", teacher_model)
    with pytest.raises(SystemExit, match="full-context"):
        export_onnx.main(streaming=True, argv=["--exp-dir", str(exp_dir), *CKPT,
                                               "--lang-dir", str(recipe / "data" / "lang_bpe_200")])


# ----------------------------------------------------------------------------- ONNX
@torch.no_grad()
@pytest.mark.parametrize("exported", ["student", "chunk_conv_student"])
def test_onnx_encoder_over_chunks_equals_simulated_streaming(exported, request):
    """onnxruntime fed as sherpa-onnx feeds it (zero states shaped from the metadata,
    T frames, processed_frames += decode_chunk_len) gives, chunk after chunk, the frames
    of the whole-utterance simulated-streaming PyTorch encoder; for the causal and the
    chunk-aware convolution."""
    import onnxruntime as ort

    model, _, files = request.getfixturevalue(exported)
    result = check_streaming_onnx(model, files["fp32"], num_chunks=6, batch_size=3)
    assert result.ok, str(result)
    meta = {p.key: p.value for p in onnx.load(str(files["fp32"].encoder)).metadata_props}
    T, shift = int(meta["T"]), int(meta["decode_chunk_len"])
    layers, left, dim, kernel = (int(meta[k]) for k in (
        "num_encoder_layers", "left_context", "encoder_dim", "cnn_module_kernel"))
    num_chunks, batch = 7, 2
    torch.manual_seed(3)
    x = torch.randn(batch, num_chunks * shift + 3, 80)
    encoder_out, lens = model.encoder(x, torch.full((batch,), x.shape[1]), CHUNK, LEFT)
    reference = model.joiner.encoder_proj(encoder_out)[:, : num_chunks * CHUNK].numpy()
    session = ort.InferenceSession(str(files["fp32"].encoder), providers=["CPUExecutionProvider"])

    def run(advance_processed_frames: bool) -> np.ndarray:
        attn = np.zeros((layers, left, batch, dim), np.float32)
        conv = np.zeros((layers, kernel - 1, batch, dim), np.float32)
        processed = np.zeros(batch, np.int64)
        outputs = []
        for i in range(num_chunks):
            out, attn, conv = session.run(None, {
                "x": x[:, i * shift : i * shift + T].numpy(), "cached_attn": attn,
                "cached_conv": conv, "processed_frames": processed})
            outputs.append(out)
            if advance_processed_frames:
                processed = processed + shift
        return np.concatenate(outputs, axis=1)

    assert np.abs(run(True) - reference).max() < 1e-4
    # The comparison can fail: a runtime that never advanced processed_frames would keep
    # the cache masked, and the frames after the first chunk would differ.
    assert np.abs(run(False) - reference).max() > 1e-2


def test_exporter_refuses_bad_metadata_and_writes_nothing(student, recipe, tmp_path):
    model, _, files = student
    tokens = recipe / "data" / "lang_bpe_200" / "tokens.txt"
    good = {p.key: p.value for p in onnx.load(str(files["fp32"].encoder)).metadata_props}
    validate_metadata(good, STREAMING_ENCODER)
    missing = {k: v for k, v in good.items() if k != "left_context"}
    with pytest.raises(ExportContractError, match="missing metadata 'left_context'"):
        validate_metadata(missing, STREAMING_ENCODER)
    out_dir = tmp_path / "refused"
    with pytest.raises(ExportContractError, match="T=40 must equal decode_chunk_len"):
        export_streaming_onnx(model, out_dir, "bad", CHUNK, LEFT, tokens,
                              extra_metadata={"T": "40"})
    with pytest.raises(ExportContractError, match="model_type='zipformer2', must be 'conformer'"):
        export_streaming_onnx(model, out_dir, "bad", CHUNK, LEFT, tokens,
                              extra_metadata={"model_type": "zipformer2"})
    with pytest.raises(ExportContractError, match="200 tokens but the model's vocabulary has 50"):
        export_streaming_onnx(_model(50, True, 0), out_dir, "bad", CHUNK, LEFT, tokens)
    assert not out_dir.exists() or not any(out_dir.iterdir())
    # Inputs are bound by position: a reordered graph is refused.
    graph = onnx.load(str(files["fp32"].encoder))
    validate_graph(graph, STREAMING_ENCODER)
    inputs = list(graph.graph.input)
    del graph.graph.input[:]
    graph.graph.input.extend([inputs[0], inputs[2], inputs[1], inputs[3]])
    with pytest.raises(ExportContractError, match="binds them by position"):
        validate_graph(graph, STREAMING_ENCODER)
    with pytest.raises(ExportContractError, match="ids must be 0..|expected '<symbol> <id>'"):
        bad_tokens = tmp_path / "tokens.txt"
        bad_tokens.write_text("<blk> 0\n<sos/eos> 1\n<unk> 3\n")
        validate_tokens(bad_tokens, 3)


def test_onnx_check_script_passes_fp32_and_flags_int8(student):
    _, exp_dir, _ = student
    argv = ["--exp-dir", str(exp_dir), *CKPT, "--chunk-size", str(CHUNK),
            "--left-context", str(LEFT)]
    assert onnx_check.main(streaming=True, argv=argv).worst < 1e-4
    # int8 weights are not within the fp32 tolerance: the script exits with status 1 (not 2,
    # argparse refusing the command line).
    with pytest.raises(SystemExit) as exit_info:
        onnx_check.main(streaming=True, argv=argv + ["--precision", "int8"])
    assert exit_info.value.code == 1


# ----------------------------------------------------------------------------- sherpa-onnx
def test_sherpa_chunk_conv_model_equals_pytorch_chunkwise_greedy(chunk_conv_student, recipe):
    """sherpa-onnx fp32 runs the chunk-aware model unchanged (same contract, same cache
    shapes) and gives PyTorch's tokens on every utterance."""
    model, exp_dir, files = chunk_conv_student
    meta = {p.key: p.value for p in onnx.load(str(files["fp32"].encoder)).metadata_props}
    assert meta["conv_context"] == "chunk"
    _, audios = _audios(recipe)
    reference = pytorch_sherpa_schedule(model, StreamingConfig(CHUNK, LEFT), audios)
    assert all(len(h) > 5 for h in reference)
    summaries = sherpa_decode.main(streaming=True, argv=[
        "--exp-dir", str(exp_dir), *CKPT, "--chunk-size", str(CHUNK), "--left-context", str(LEFT),
        "--lang-dir", str(recipe / "data" / "lang_bpe_200"), "--test-sets", "test-clean",
        "--manifest-dir", str(recipe / "data" / "fbank"), "--precisions", "fp32"])
    assert summaries[0]["identical_to_pytorch"] == 1.0
    assert summaries[0]["num_utterances"] == NUM_CUTS
    # Control: the causal model's tokens differ, so identity above is the chunk model's.
    causal = _model(200, causal=True, seed=0)
    assert pytorch_sherpa_schedule(causal, StreamingConfig(CHUNK, LEFT), audios) != reference


def test_sherpa_online_recognizer_equals_pytorch_chunkwise_greedy(student, recipe):
    model, exp_dir, files = student
    ids, audios = _audios(recipe)
    reference = pytorch_sherpa_schedule(model, StreamingConfig(CHUNK, LEFT), audios)
    assert all(len(h) > 5 for h in reference)  # the random model emits: equality means something
    summaries = sherpa_decode.main(streaming=True, argv=[
        "--exp-dir", str(exp_dir), *CKPT, "--chunk-size", str(CHUNK), "--left-context", str(LEFT),
        "--lang-dir", str(recipe / "data" / "lang_bpe_200"), "--test-sets", "test-clean",
        "--manifest-dir", str(recipe / "data" / "fbank"), "--num-decode-streams", "4"])
    by_precision = {s["precision"]: s for s in summaries}
    assert by_precision["fp32"]["identical_to_pytorch"] == 1.0
    assert by_precision["fp32"]["num_utterances"] == NUM_CUTS
    assert 0 < by_precision["int8"]["real_time_factor"] < 10
    res_dir = exp_dir / "sherpa-onnx" / "greedy_search"
    suffix = f"epoch-1_avg-1_chunk-{CHUNK}_left-context-{LEFT}_fp32"
    for kind in ("recogs", "errs", "wer-summary"):
        assert (res_dir / f"{kind}-test-clean-{suffix}.txt").is_file()
    summary = json.loads((res_dir / f"sherpa-summary-test-clean-{suffix}.json").read_text())
    assert summary["identical_to_pytorch"] == 1.0
    # The sherpa-onnx token ids themselves, straight from the runtime.
    result = run_in_subprocess({
        "mode": "online", "files": files["fp32"].as_dict(),
        "cuts": str(recipe / "data" / "fbank" / "librispeech_cuts_test-clean.jsonl.gz"),
        "num_threads": 1, "tail_padding_samples": StreamingConfig(CHUNK, LEFT).tail_padding_samples,
        "num_streams": 1})
    assert [u["id"] for u in result["utterances"]] == ids
    assert [u["token_ids"] for u in result["utterances"]] == reference


def test_sherpa_offline_recognizer_equals_pytorch_greedy(teacher, recipe):
    model, exp_dir, files = teacher
    _, audios = _audios(recipe)
    assert all(len(h) > 5 for h in pytorch_offline(model, audios))
    summaries = sherpa_decode.main(streaming=False, argv=[
        "--exp-dir", str(exp_dir), *CKPT, "--lang-dir", str(recipe / "data" / "lang_bpe_200"),
        "--test-sets", "test-clean", "--manifest-dir", str(recipe / "data" / "fbank"),
        "--precisions", "fp32"])
    assert summaries[0]["identical_to_pytorch"] == 1.0


def test_sherpa_crash_is_reported_not_fatal(teacher, recipe):
    """The offline encoder lacks the streaming metadata: sherpa-onnx ends its process;
    the caller gets an exception with sherpa-onnx's message."""
    _, _, files = teacher
    with pytest.raises(SherpaRuntimeError, match="exit code"):
        run_in_subprocess({
            "mode": "online", "files": files["fp32"].as_dict(),
            "cuts": str(recipe / "data" / "fbank" / "librispeech_cuts_test-clean.jsonl.gz"),
            "num_threads": 1, "tail_padding_samples": 0}, timeout=120)


def test_scripts_have_kebab_case_help():
    for module in (export, export_onnx, onnx_check, sherpa_decode):
        text = module.build_parser("x", streaming=True).format_help()
        flags = [w.strip(",[]") for w in text.split() if w.startswith(("--", "[--"))]
        assert "--exp-dir" in flags and "--chunk-size" in flags
        assert not [f for f in flags if "_" in f], flags
