"""Synthetic speakers: an espeak-ng voice (accent + variant) with its own pitch and rate.

Speakers never share an accent+variant pair across corpus parts, so dev and test voices are
unheard in training, as LibriSpeech's speakers are.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Dict, List

ACCENTS = (
    "en-us", "en", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp",
    "en-gb-x-gbcwmd", "en-029", "en-us-nyc",
)
CLEAN_VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "Alex", "Andy", "Annie", "Denis", "Gene", "Jacky", "Lee",
    "Mario", "Michael", "Mike", "adam", "anika", "aunty", "belinda", "benjamin", "boris",
    "caleb", "david", "ed", "edward", "grandma", "grandpa", "john", "linda", "max",
    "michel", "norbert", "paul", "quincy", "rob", "robert", "steph", "travis", "victor", "zac",
)
# Rougher voices for the harder evaluation part (LibriSpeech's "other").
ROUGH_VARIANTS = ("croak", "klatt4", "klatt6", "Storm", "iven3", "steph3", "Tweaky", "kaukovalta")


@dataclass(frozen=True)
class Speaker:
    speaker_id: int  # LibriSpeech-style numeric id
    voice: str  # espeak-ng voice name, e.g. "en-us+m3"
    pitch: int  # espeak-ng 0..100
    pitch_range: int  # espeak-ng 0..100
    words_per_minute: int  # espeak-ng's nominal rate; ~48 wpm per spoken word/second


def make_speakers(
    counts: Dict[str, int],
    rough_parts: List[str],
    seed: int,
    rate_range=(120, 145),
    first_id: int = 1000,
) -> Dict[str, List[Speaker]]:
    """``counts[part]`` speakers per part, with accent+variant pairs disjoint across parts.

    ``rate_range`` (espeak-ng words per minute) was chosen by measurement: with these voices
    it gives about 2.5 to 3 spoken words per second, LibriSpeech's read-speech rate.
    """
    rng = random.Random(seed)
    clean = [f"{a}+{v}" for a in ACCENTS for v in CLEAN_VARIANTS]
    rough = [f"{a}+{v}" for a in ACCENTS for v in ROUGH_VARIANTS]
    rng.shuffle(clean)
    rng.shuffle(rough)
    speakers: Dict[str, List[Speaker]] = {}
    next_id = first_id
    for part, count in counts.items():
        pool = rough if part in rough_parts else clean
        if count > len(pool):
            raise ValueError(f"{count} speakers asked for {part}, only {len(pool)} voices left")
        voices, pool[:] = pool[:count], pool[count:]
        speakers[part] = []
        for voice in voices:
            speakers[part].append(
                Speaker(
                    speaker_id=next_id,
                    voice=voice,
                    pitch=rng.randint(25, 75),
                    pitch_range=rng.randint(30, 80),
                    words_per_minute=rng.randint(*rate_range),
                )
            )
            next_id += 1
    return speakers
