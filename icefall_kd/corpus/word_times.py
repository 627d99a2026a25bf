"""Exact word start and end times from espeak-ng's word and phoneme events.

espeak-ng speaks some word pairs as one unit ("there be", "have been") and then reports a
single WORD event for both. The unit's PHONEME events are still timed, so such a unit is
split at the phoneme where its second word begins, found by counting each word's phonemes
as espeak-ng transcribes the word on its own. When those counts do not add up to the unit's
phonemes the split is not exact, and :func:`word_times_from_events` returns ``None`` rather
than a guess (the corpus then leaves the sentence out).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

from icefall_kd.corpus.espeak import SynthEvent


# Phonemes espeak-ng inserts between words ("for a" -> f 3 r- @).
_LINKING = frozenset({"r-", "n-"})


@dataclass(frozen=True)
class WordTime:
    word: str
    start: float  # seconds: onset of the word's first phoneme
    end: float  # seconds: end of the word's last phoneme (before any pause)


def word_times_from_events(
    words: Sequence[str],
    word_char_starts: Sequence[int],
    events: Sequence[SynthEvent],
    phoneme_count: Callable[[str], int],
) -> Optional[List[WordTime]]:
    """Times of ``words`` (in text order) from a synthesis' events.

    Args:
      words: the text's words; ``word_char_starts[i]`` is where word i starts in the text.
      events: word, phoneme and end events in output order.
      phoneme_count: number of phonemes espeak-ng gives a word said alone.
    Returns:
      One :class:`WordTime` per word, or ``None`` if a merged unit cannot be split exactly.
    """
    if not words:
        return []
    # Group phoneme events (with the index of the event after each) by WORD unit.
    units: List[dict] = []
    for index, event in enumerate(events):
        if event.kind == "word":
            # The text word this event belongs to: the last word starting at or before it.
            word_index = max(bisect.bisect_right(word_char_starts, event.char_start) - 1, 0)
            if units and units[-1]["first_word"] >= word_index:
                continue  # a second event inside the same word: same unit
            units.append({"first_word": word_index, "phonemes": []})
        elif event.is_sound and units:
            following = events[index + 1].seconds if index + 1 < len(events) else event.seconds
            linking = event.phoneme in _LINKING
            units[-1]["phonemes"].append((event.seconds, following, linking))
    if not units or units[0]["first_word"] != 0:
        return None
    times: List[WordTime] = []
    for unit_index, unit in enumerate(units):
        last_word = (
            units[unit_index + 1]["first_word"] if unit_index + 1 < len(units) else len(words)
        )
        unit_words = list(range(unit["first_word"], last_word))
        phonemes = unit["phonemes"]
        if not phonemes:
            return None
        if len(unit_words) == 1:
            times.append(WordTime(words[unit_words[0]], phonemes[0][0], phonemes[-1][1]))
            continue
        counts = [phoneme_count(words[i]) for i in unit_words]
        if min(counts) == 0:
            return None
        if sum(counts) == len(phonemes):
            kept = phonemes
        else:
            # A linking r or n joins two words; it belongs to neither word said alone.
            kept = [p for p in phonemes if not p[2]]
            if sum(counts) != len(kept):
                return None
        boundaries = [0]
        for count in counts:
            boundaries.append(boundaries[-1] + count)
        for k, word_index in enumerate(unit_words):
            start = kept[boundaries[k]][0]
            last_own = kept[boundaries[k + 1] - 1]
            # The word ends where its last own phoneme ends, or after a linking
            # phoneme that follows it, but never after the next word starts.
            next_start = kept[boundaries[k + 1]][0] if k + 1 < len(unit_words) else None
            end = max(
                [last_own[1]]
                + [p[1] for p in phonemes if p[2] and p[0] >= last_own[1]
                   and (next_start is None or p[1] <= next_start)]
            )
            times.append(WordTime(words[word_index], start=start, end=end))
    return times
