"""A model is bound to its tokens: checkpoints and ONNX exports record the vocabulary's
fingerprint, and decoding, streaming decoding, export, distillation, resuming and
sherpa-onnx decoding refuse another vocabulary (even one of the same size) with a message
naming both files. Checkpoints from before fingerprints are warned about once."""

import logging
import shutil
from pathlib import Path

import onnx
import pytest
import torch

from icefall_kd.data.bpe import train_bpe_model, write_transcript_words
from icefall_kd.data.vocabulary import (
    ONNX_METADATA_KEY,
    Vocabulary,
    VocabularyMismatch,
    check_vocabulary,
    vocabulary_of_bpe,
    vocabulary_of_lang_dir,
    vocabulary_of_tokens,
)
from icefall_kd.export.onnx_export import TransducerFiles
from icefall_kd.model.transducer import build_transducer
from icefall_kd.recipes import decode, export_onnx, sherpa_decode, streaming_decode, train_distill
from icefall_kd.recipes.common import load_checked_transducer
from icefall_kd.training.checkpoint import save_checkpoint
from icefall_kd.training.trainer import Trainer, TrainConfig

SIZE = 150
CKPT = ["--epoch", "1", "--avg", "1", "--use-averaged-model", "false"]


def _texts(tiny_corpus: Path):
    return [line.split(" ", 1)[1].strip() for path in sorted(tiny_corpus.rglob("*.trans.txt"))
            for line in open(path)]


@pytest.fixture(scope="module")
def langs(tiny_corpus, tmp_path_factory):
    """Two BPE models of the same size trained on different halves of the transcripts, and
    one of another size: {"own": dir, "other": dir, "smaller": dir}."""
    root = tmp_path_factory.mktemp("langs")
    texts = _texts(tiny_corpus)
    halves = {"own": texts[::2], "other": texts[1::2], "smaller": texts[::2]}
    dirs = {}
    for name, lines in halves.items():
        write_transcript_words(lines, root / f"{name}.txt")
        dirs[name] = root / f"lang_{name}"
        train_bpe_model(root / f"{name}.txt", dirs[name], SIZE if name != "smaller" else 120)
    return dirs


def _trained_checkpoint(exp_dir: Path, lang_dir: Path, causal: bool, seed: int = 0) -> Path:
    """epoch-1.pt as the trainer writes it (its state, with the vocabulary of lang_dir)."""
    torch.manual_seed(seed)
    model = build_transducer("tiny", SIZE, causal=causal, dropout=0.0)
    trainer = Trainer(model, None, TrainConfig(exp_dir=exp_dir, tensorboard=False),
                      lambda state: None, None, model_config=model.config.to_dict(),
                      vocabulary=vocabulary_of_lang_dir(lang_dir))
    save_checkpoint(exp_dir / "epoch-1.pt", trainer._state(None))
    return exp_dir / "epoch-1.pt"


@pytest.fixture(scope="module")
def student(langs, tmp_path_factory):
    exp_dir = tmp_path_factory.mktemp("student-exp")
    _trained_checkpoint(exp_dir, langs["own"], causal=True)
    return exp_dir


@pytest.fixture(scope="module")
def teacher(langs, tmp_path_factory):
    exp_dir = tmp_path_factory.mktemp("teacher-exp")
    _trained_checkpoint(exp_dir, langs["own"], causal=False, seed=1)
    return exp_dir


def test_fingerprint_is_the_piece_list(langs):
    own = vocabulary_of_bpe(langs["own"] / "bpe.model")
    assert own.same_as(vocabulary_of_tokens(langs["own"] / "tokens.txt"))  # same pieces
    other = vocabulary_of_bpe(langs["other"] / "bpe.model")
    assert other.size == own.size == SIZE and not other.same_as(own)
    lines = (langs["own"] / "tokens.txt").read_text().splitlines()
    swapped = langs["own"].parent / "swapped-tokens.txt"
    swapped.write_text("\n".join([lines[0], lines[1], lines[2], lines[4].split()[0] + " 3",
                                  lines[3].split()[0] + " 4"] + lines[5:]) + "\n")
    assert not vocabulary_of_tokens(swapped).same_as(own)  # two ids exchanged: another table


def test_checkpoint_records_the_vocabulary_and_decoding_checks_it(student, langs):
    state = torch.load(student / "epoch-1.pt", weights_only=False)
    assert Vocabulary.from_dict(state["vocabulary"]).same_as(vocabulary_of_lang_dir(langs["own"]))
    load_checked_transducer(student, 1, 1, False, langs["own"])  # control: its own vocabulary
    for name in ("other", "smaller"):
        with pytest.raises(SystemExit) as error:
            load_checked_transducer(student, 1, 1, False, langs[name])
        message = str(error.value.code)
        assert str(student / "epoch-1.pt") in message and str(langs[name] / "bpe.model") in message
        assert "pass the --lang-dir the model was trained with" in message


@pytest.mark.parametrize("script", [decode, streaming_decode])
def test_decode_scripts_refuse_another_vocabulary_before_decoding(script, student, langs, tmp_path):
    with pytest.raises(SystemExit) as error:
        script.main(argv=[
            "--exp-dir", str(student), *CKPT, "--lang-dir", str(langs["other"]),
            "--manifest-dir", str(tmp_path / "no-features"), "--res-dir", str(tmp_path)])
    assert "another vocabulary" in str(error.value.code)


def test_distillation_refuses_a_teacher_or_student_of_another_vocabulary(
        teacher, student, langs, tmp_path):
    other_student = tmp_path / "other-student"
    _trained_checkpoint(other_student, langs["other"], causal=True)

    def distill(lang: str, init_from: Path) -> str:
        with pytest.raises(BaseException) as error:
            train_distill.main("", "stage1", [
                "--teacher-exp-dir", str(teacher), "--teacher-epoch", "1", "--teacher-avg", "1",
                "--teacher-use-averaged-model", "false", "--exp-dir", str(tmp_path / "kd"),
                "--init-from", str(init_from), "--init-epoch", "1", "--init-avg", "1",
                "--init-use-averaged-model", "false", "--model-preset", "tiny",
                "--lang-dir", str(langs[lang]), "--manifest-dir", str(tmp_path / "no-features")])
        return str(error.value.code if isinstance(error.value, SystemExit) else error.value)

    message = distill("other", student)  # the teacher is checked first
    assert str(teacher / "epoch-1.pt") in message and str(langs["other"] / "bpe.model") in message
    message = distill("own", other_student)
    assert "another vocabulary" in message and str(other_student / "epoch-1.pt") in message
    # Control: all three agree, and the run gets past the checks to the (missing) data.
    assert "vocabulary" not in distill("own", student)


def test_resume_refuses_another_vocabulary(student, langs):
    state = torch.load(student / "epoch-1.pt", weights_only=False)
    model = build_transducer("tiny", SIZE, causal=True, dropout=0.0)
    for name, refused in (("own", False), ("other", True)):
        trainer = Trainer(model, None, TrainConfig(exp_dir=student, tensorboard=False),
                          lambda s: None, None, model_config=model.config.to_dict(),
                          vocabulary=vocabulary_of_lang_dir(langs[name]))
        if not refused:
            assert trainer._check_model_config(student / "epoch-1.pt", state) is state
            continue
        with pytest.raises(SystemExit, match="resume with the --lang-dir it was trained with"):
            trainer._check_model_config(student / "epoch-1.pt", state)


def test_old_checkpoint_is_warned_once_and_its_size_still_checked(langs, tmp_path, caplog):
    model = build_transducer("tiny", SIZE, causal=True)
    save_checkpoint(tmp_path / "epoch-1.pt",  # as written before vocabularies were stored
                    {"model": model.state_dict(), "model_config": model.config.to_dict()})
    with caplog.at_level(logging.WARNING):
        load_checked_transducer(tmp_path, 1, 1, False, langs["own"])
        load_checked_transducer(tmp_path, 1, 1, False, langs["own"])
    assert caplog.text.count("records no vocabulary fingerprint") == 1
    with pytest.raises(SystemExit, match=f"has {SIZE} output tokens but .* holds 120"):
        load_checked_transducer(tmp_path, 1, 1, False, langs["smaller"])


def test_check_vocabulary_names_both_sources():
    a, b = Vocabulary(3, "aa", "a/bpe.model"), Vocabulary(3, "bb", "b/tokens.txt")
    check_vocabulary(a, "exp/epoch-1.pt", a)
    with pytest.raises(VocabularyMismatch, match="exp/epoch-1.pt .* b/tokens.txt"):
        check_vocabulary(a, "exp/epoch-1.pt", b)


def test_export_binds_the_onnx_files_and_sherpa_decode_checks_them(student, langs, tmp_path):
    with pytest.raises(SystemExit, match="another vocabulary"):
        export_onnx.main(streaming=True, argv=[
            "--exp-dir", str(student), *CKPT, "--lang-dir", str(langs["other"]),
            "--output-dir", str(tmp_path / "refused"), "--int8", "false"])
    assert not list((tmp_path / "refused").glob("*.onnx"))  # nothing written
    out = tmp_path / "onnx"
    files = export_onnx.main(streaming=True, argv=[
        "--exp-dir", str(student), *CKPT, "--lang-dir", str(langs["own"]),
        "--output-dir", str(out), "--int8", "false"])["fp32"]
    metadata = {p.key: p.value for p in onnx.load(str(files.encoder)).metadata_props}
    assert metadata[ONNX_METADATA_KEY] == vocabulary_of_lang_dir(langs["own"]).to_metadata()
    sherpa_decode.check_exported_vocabulary(files, langs["own"])  # control: all agree
    with pytest.raises(SystemExit) as error:  # --lang-dir maps ids to other pieces
        sherpa_decode.check_exported_vocabulary(files, langs["other"])
    assert str(files.encoder) in str(error.value.code) and str(langs["other"]) in str(error.value.code)
    shutil.copy(langs["other"] / "tokens.txt", files.tokens)  # sherpa-onnx would print other text
    with pytest.raises(SystemExit) as error:
        sherpa_decode.check_exported_vocabulary(files, langs["own"])
    assert str(files.tokens) in str(error.value.code)
    assert "export again" in str(error.value.code)
    missing = TransducerFiles.in_dir(tmp_path / "nowhere", "x")
    with pytest.raises(SystemExit, match="run export_onnx.py first"):
        sherpa_decode.check_exported_vocabulary(missing, langs["own"])
