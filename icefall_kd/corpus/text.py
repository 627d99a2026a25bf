"""English sentences for the embedded corpus, normalised the way LibriSpeech writes text.

Source: the King James Version of the Bible (1611; public domain), as shipped by Debian's
``bible-kjv-text`` package and printed by its ``bible`` program. It is real English prose
read aloud (LibriVox has recordings of it, so it is LibriSpeech-like material), has about
12,000 distinct words and about 60,000 sentence-sized clauses, and installs offline with apt.

Normalisation follows LibriSpeech: upper case, words separated by single spaces, only
letters and apostrophes; hyphenated words become separate words.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Dict, Iterable, List, Sequence, Set

# Split a verse into sentence-sized pieces at sentence punctuation ...
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")
# ... and split over-long pieces further at clause punctuation.
_CLAUSE_END = re.compile(r"(?<=[;:])\s+")
_WORD = re.compile(r"[A-Z]+(?:'[A-Z]+)*")
_ALLOWED = re.compile(r"^[A-Za-z' ,.;:?!()\-]+$")


class TextSourceUnavailable(RuntimeError):
    pass


def read_kjv_verses(bible_program: str = "bible") -> List[str]:
    """Every verse of the KJV, in canonical order, as printed by Debian's ``bible``."""
    if shutil.which(bible_program) is None:
        raise TextSourceUnavailable(
            "The embedded corpus takes its sentences from Debian's KJV text. "
            "Run: apt-get install -y bible-kjv bible-kjv-text (tools/install.sh does this as root)."
        )
    printed = subprocess.run(
        [bible_program, "-l0", "gen1:1-rev22:21"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    verses = []
    for line in printed.splitlines():
        match = re.match(r"^\s*\d+\s+(.*\S)\s*$", line)  # "  12 And God said ..."
        if match:
            verses.append(match.group(1))
    if len(verses) < 30000:
        raise TextSourceUnavailable(
            f"`{bible_program}` printed only {len(verses)} verses; the KJV has 31,102. "
            "Reinstall bible-kjv-text."
        )
    return verses


def normalize_words(text: str) -> List[str]:
    """LibriSpeech-style words: ``"Lord's house-top,"`` -> ``["LORD'S", "HOUSE", "TOP"]``."""
    return _WORD.findall(text.upper().replace("-", " "))


def split_into_sentences(verse: str, max_words: int) -> List[str]:
    """Sentence-sized pieces of ``verse`` (original spelling and punctuation kept)."""
    pieces: List[str] = []
    for sentence in _SENTENCE_END.split(verse):
        if len(normalize_words(sentence)) <= max_words:
            pieces.append(sentence)
        else:
            pieces.extend(_CLAUSE_END.split(sentence))
    return [p for p in pieces if p.strip()]


@dataclass(frozen=True)
class Sentence:
    """``spoken`` is what the synthesiser reads (punctuation kept, for prosody);
    ``words`` is the LibriSpeech transcript, one entry per word of ``spoken``."""

    spoken: str
    words: tuple


def extract_sentences(verses: Iterable[str], min_words: int, max_words: int) -> List[Sentence]:
    """Distinct sentences of ``min_words..max_words`` words, in source order."""
    seen: Set[tuple] = set()
    sentences = []
    for verse in verses:
        for piece in split_into_sentences(verse, max_words):
            if not _ALLOWED.match(piece):  # digits, brackets of other kinds, non-ASCII
                continue
            words = tuple(normalize_words(piece))
            if not (min_words <= len(words) <= max_words) or words in seen:
                continue
            seen.add(words)
            spoken = piece.replace("-", " ").replace("(", "").replace(")", "")
            sentences.append(Sentence(spoken=spoken, words=words))
    return sentences


def assign_sentences_to_parts(
    sentences: Sequence[Sentence],
    part_sizes: Dict[str, int],
    train_part: str,
    seed: int,
    in_vocabulary_eval: bool = True,
) -> Dict[str, List[Sentence]]:
    """Disjoint random subsets of ``sentences``, ``part_sizes[part]`` each.

    The training part is drawn first. With ``in_vocabulary_eval``, evaluation parts only take
    sentences whose words all occur in the training part (LibriSpeech's test sets are almost
    free of out-of-vocabulary words too); this keeps the task about acoustics, not about
    spelling words never heard.
    """
    rng = random.Random(seed)
    order = list(range(len(sentences)))
    rng.shuffle(order)
    needed = sum(part_sizes.values())
    if needed > len(sentences):
        raise ValueError(
            f"The profile asks for {needed} sentences, the source has {len(sentences)}; "
            "lower the part sizes or raise max_words."
        )
    train_size = part_sizes[train_part]
    parts = {train_part: [sentences[i] for i in order[:train_size]]}
    vocabulary = {w for s in parts[train_part] for w in s.words}
    remaining = (sentences[i] for i in order[train_size:])
    for part, size in part_sizes.items():
        if part == train_part:
            continue
        chosen: List[Sentence] = []
        for sentence in remaining:
            if len(chosen) == size:
                break
            if in_vocabulary_eval and not set(sentence.words) <= vocabulary:
                continue
            chosen.append(sentence)
        if len(chosen) < size:
            raise ValueError(
                f"Only {len(chosen)} in-vocabulary sentences left for {part}, "
                f"{size} asked; make the training part larger or the part smaller."
            )
        parts[part] = chosen
    return parts
