"""A sentencepiece unigram model in icefall's convention: <blk>=0, <sos/eos>=1, <unk>=2."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Iterable

import sentencepiece as spm

BLANK_ID = 0
SOS_EOS_ID = 1
UNK_ID = 2


def write_transcript_words(texts: Iterable[str], path: Path) -> int:
    """One transcript a line; returns the number of lines."""
    count = 0
    with open(path, "w") as f:
        for text in texts:
            f.write(text + "\n")
            count += 1
    return count


def train_bpe_model(transcripts: Path, lang_dir: Path, vocab_size: int) -> Path:
    """Writes ``unigram_<V>.model``, ``bpe.model`` (a copy) and ``tokens.txt`` to ``lang_dir``."""
    lang_dir.mkdir(parents=True, exist_ok=True)
    prefix = lang_dir / f"unigram_{vocab_size}"
    spm.SentencePieceTrainer.train(
        input=str(transcripts),
        vocab_size=vocab_size,
        model_type="unigram",
        model_prefix=str(prefix),
        input_sentence_size=100_000_000,
        character_coverage=1.0,
        user_defined_symbols=["<blk>", "<sos/eos>"],
        unk_id=UNK_ID,
        bos_id=-1,
        eos_id=-1,
        minloglevel=2,
    )
    shutil.copyfile(f"{prefix}.model", lang_dir / "bpe.model")
    write_tokens_txt(lang_dir / "bpe.model", lang_dir / "tokens.txt")
    return lang_dir / "bpe.model"


def write_tokens_txt(model_path: Path, tokens_path: Path) -> None:
    """``tokens.txt`` lines ``<piece> <id>``, as sherpa-onnx and icefall read them."""
    sp = spm.SentencePieceProcessor(model_file=str(model_path))
    with open(tokens_path, "w") as f:
        for i in range(sp.get_piece_size()):
            f.write(f"{sp.id_to_piece(i)} {i}\n")
