"""prepare.sh end to end: the embedded corpus, and a LibriSpeech-layout folder through the
same stages; then the BPE model and a data-module batch from what it wrote."""

import shutil

import sentencepiece as spm
import torch
from lhotse import load_manifest

from icefall_kd.data.datamodule import AsrDataModule, DataConfig
from icefall_kd.data.filters import TrainingCutFilter
from icefall_kd.model.subsampling import frames_after_subsampling

from conftest import run_prepare as _run_prepare

PARTS = ["train-clean-100", "dev-clean", "test-clean", "test-other"]


def test_prepare_writes_every_file(prepared_tiny):
    data = prepared_tiny / "data"
    for part in PARTS:
        for kind in ("recordings", "supervisions"):
            assert (data / "manifests" / f"librispeech_{kind}_{part}.jsonl.gz").is_file()
        assert (data / "fbank" / f"librispeech_cuts_{part}.jsonl.gz").is_file()
    for name in ("bpe.model", "unigram_200.model", "tokens.txt", "transcript_words.txt"):
        assert (data / "lang_bpe_200" / name).is_file()
    for marker in (".corpus.done", ".manifests.done", ".fbank.done", ".validate.done"):
        assert (data / marker).is_file()
    cuts = load_manifest(data / "fbank" / "librispeech_cuts_dev-clean.jsonl.gz")
    cut = cuts[0]
    assert cut.num_features == 80 and cut.sampling_rate == 16000
    words = [w.symbol for w in cut.supervisions[0].alignment["word"] if w.symbol]
    assert words == cut.supervisions[0].text.split()


def test_second_run_does_nothing_and_other_profile_is_refused(prepared_tiny):
    result = _run_prepare(prepared_tiny.parent)
    assert result.returncode != 0
    assert "rm -rf data" in result.stderr
    again = _run_prepare(prepared_tiny.parent, "--profile", "tiny")
    assert again.returncode == 0 and "Stage" not in again.stdout


def test_bpe_special_ids_and_tokens_txt(prepared_tiny):
    lang = prepared_tiny / "data" / "lang_bpe_200"
    sp = spm.SentencePieceProcessor(model_file=str(lang / "bpe.model"))
    assert sp.get_piece_size() == 200
    assert [sp.id_to_piece(i) for i in range(3)] == ["<blk>", "<sos/eos>", "<unk>"]
    assert sp.unk_id() == 2
    table = dict(line.split() for line in (lang / "tokens.txt").read_text().splitlines())
    assert table["<blk>"] == "0" and table["<sos/eos>"] == "1" and table["<unk>"] == "2"
    assert len(table) == 200 and all(table[sp.id_to_piece(i)] == str(i) for i in range(200))
    text = (lang / "transcript_words.txt").read_text().splitlines()[0]
    ids = sp.encode(text)
    assert min(ids) > 2 and sp.decode(ids) == text


def test_data_module_batch(prepared_tiny, monkeypatch):
    monkeypatch.chdir(prepared_tiny)  # manifests hold recipe-relative paths, as in icefall
    config = DataConfig(manifest_dir=prepared_tiny / "data" / "fbank", max_duration=30,
                        num_workers=0, num_buckets=2)
    module = AsrDataModule(config)
    sp = spm.SentencePieceProcessor(model_file=str(prepared_tiny / "data/lang_bpe_200/bpe.model"))
    keep = TrainingCutFilter(sp, min_seconds=1.0, max_seconds=20.0)
    cuts = module.cuts("train-clean-100").filter(keep)
    batch = next(iter(module.train_dataloader(cuts)))
    inputs, sup = batch["inputs"], batch["supervisions"]
    assert inputs.dim() == 3 and inputs.shape[2] == 80 and inputs.dtype == torch.float32
    assert len(sup["text"]) == inputs.shape[0] == len(sup["cut"])
    assert int(sup["num_frames"].max()) == inputs.shape[1]
    assert sum(c.duration for c in sup["cut"]) <= 30
    for cut in sup["cut"]:
        assert frames_after_subsampling(cut.num_frames) >= len(sp.encode(cut.supervisions[0].text))
    assert keep.counts["kept"] > 0


def test_sampler_resumes_on_exactly_the_next_batch(prepared_tiny, monkeypatch):
    monkeypatch.chdir(prepared_tiny)
    config = DataConfig(manifest_dir=prepared_tiny / "data" / "fbank", max_duration=25,
                        num_workers=0, num_buckets=2)
    module = AsrDataModule(config)
    cuts = module.cuts("train-clean-100")

    def ids(batch):
        return [c.id for c in batch]

    full = [ids(b) for b in module.train_sampler(cuts)]
    interrupted = module.train_sampler(cuts)
    it = iter(interrupted)
    for _ in range(3):
        next(it)
    state = interrupted.state_dict()
    resumed = module.train_sampler(cuts)
    resumed.load_state_dict(state)
    assert [ids(b) for b in resumed] == full[3:]
    assert len(full) > 4


def test_librispeech_layout_folder_goes_through_the_same_stages(tiny_corpus, tmp_path):
    """A folder laid out like the real LibriSpeech (no tts marker file, no alignments)."""
    corpus = tmp_path / "dl" / "LibriSpeech"
    for part in ("train-clean-100", "dev-clean"):
        shutil.copytree(tiny_corpus / part, corpus / part,
                        ignore=shutil.ignore_patterns("*.alignment.txt"))
    result = _run_prepare(tmp_path, "--dl-dir", str(tmp_path / "dl"),
                          "--parts", "train-clean-100 dev-clean", "--vocab-sizes", "150",
                          "--perturb-speed", "false")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "corpus=librispeech" in result.stdout
    data = tmp_path / "ASR" / "data"
    cuts = load_manifest(data / "fbank" / "librispeech_cuts_dev-clean.jsonl.gz")
    assert len(cuts) == len(list((corpus / "dev-clean").rglob("*.flac")))
    assert all(c.supervisions[0].alignment is None for c in cuts)
    assert (data / "lang_bpe_150" / "tokens.txt").is_file()
