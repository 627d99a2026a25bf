"""Vocabulary fingerprints: which token table a model was trained with, so that a model is
never decoded, exported or distilled through another one.

A model's output ``k`` means the ``k``-th piece of its BPE model. Two vocabularies are the
same when they hold the same pieces in the same order, so the fingerprint is the SHA-256 of
the pieces in id order: ``bpe.model`` and the ``tokens.txt`` written from it give the same
fingerprint, and another BPE model of the same size does not. Checkpoints store it under
``"vocabulary"``; exported ONNX encoders under the metadata key :data:`ONNX_METADATA_KEY`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Set

import sentencepiece as spm

ONNX_METADATA_KEY = "icefall_kd_vocabulary"  # "<size>:<digest>"; sherpa-onnx ignores it

_warned: Set[str] = set()


@dataclass(frozen=True)
class Vocabulary:
    """size: number of tokens; digest: SHA-256 of the pieces in id order; source: the file it
    was read from (for messages; not compared)."""

    size: int
    digest: str
    source: str = ""

    @staticmethod
    def of_pieces(pieces: List[str], source: str) -> "Vocabulary":
        digest = hashlib.sha256("\n".join(pieces).encode("utf-8")).hexdigest()
        return Vocabulary(len(pieces), digest, source)

    def same_as(self, other: "Vocabulary") -> bool:
        return self.size == other.size and self.digest == other.digest

    def describe(self) -> str:
        return f"{self.size} tokens, fingerprint {self.digest[:12]}"

    def to_dict(self) -> dict:
        return {"size": self.size, "digest": self.digest, "source": self.source}

    @staticmethod
    def from_dict(d: Optional[dict]) -> Optional["Vocabulary"]:
        return None if not d else Vocabulary(int(d["size"]), str(d["digest"]), d.get("source", ""))

    def to_metadata(self) -> str:
        return f"{self.size}:{self.digest}"

    @staticmethod
    def from_metadata(value: Optional[str], source: str) -> Optional["Vocabulary"]:
        if not value:
            return None
        size, digest = value.split(":", 1)
        return Vocabulary(int(size), digest, source)


def vocabulary_of_bpe(path: Path) -> Vocabulary:
    """The fingerprint of a sentencepiece model file."""
    sp = spm.SentencePieceProcessor(model_file=str(path))
    return Vocabulary.of_pieces([sp.id_to_piece(i) for i in range(sp.get_piece_size())], str(path))


def vocabulary_of_tokens(path: Path) -> Vocabulary:
    """The fingerprint of a ``tokens.txt`` (``<piece> <id>`` lines, any order)."""
    table = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            piece, index = line.rsplit(maxsplit=1)
            table[int(index)] = piece
    return Vocabulary.of_pieces([table[i] for i in sorted(table)], str(path))


def vocabulary_of_lang_dir(lang_dir: Path) -> Vocabulary:
    """From ``lang_dir/bpe.model``, else ``lang_dir/tokens.txt``."""
    lang_dir = Path(lang_dir)
    if (lang_dir / "bpe.model").is_file():
        return vocabulary_of_bpe(lang_dir / "bpe.model")
    if (lang_dir / "tokens.txt").is_file():
        return vocabulary_of_tokens(lang_dir / "tokens.txt")
    raise FileNotFoundError(f"{lang_dir} holds neither bpe.model nor tokens.txt; run "
                            "prepare.sh (stage 3) or pass the --lang-dir the model was trained with")


class VocabularyMismatch(ValueError):
    """A model and a token table that do not belong together; the message names both."""


def check_vocabulary(model_vocabulary: Optional[Vocabulary], model_source: str,
                     table: Vocabulary, model_size: Optional[int] = None,
                     remedy: str = "pass the --lang-dir the model was trained with") -> None:
    """Raises :class:`VocabularyMismatch` unless ``table`` is the vocabulary that
    ``model_source`` (a checkpoint or ONNX file) was made with. A model that records no
    vocabulary (made before fingerprints) is checked by ``model_size`` only, with one
    warning per source."""
    if model_vocabulary is None:
        if model_size is not None and model_size != table.size:
            raise VocabularyMismatch(
                f"{model_source} has {model_size} output tokens but {table.source} holds "
                f"{table.size}: {remedy}")
        if model_source not in _warned:
            _warned.add(model_source)
            logging.warning(f"{model_source} records no vocabulary fingerprint (written before "
                            f"they were stored): cannot check that {table.source} is the one it "
                            "was trained with, only its size")
        return
    if not model_vocabulary.same_as(table):
        raise VocabularyMismatch(
            f"{model_source} was trained with another vocabulary than {table.source}: "
            f"{model_vocabulary.describe()} (from {model_vocabulary.source or 'unknown'}) "
            f"against {table.describe()}; {remedy}")
