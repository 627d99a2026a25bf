"""Speech synthesis through libespeak-ng, with the synthesiser's own word times.

espeak-ng reports a WORD event for every word it speaks, carrying the word's position in
the input text and its audio position in milliseconds. That is the only route to *exact*
reference word times in this project (LibriSpeech has none), so the corpus keeps them.

The library is a process-wide singleton: create one :class:`EspeakSynthesizer` per process
(worker pools do this in their initialiser).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
from dataclasses import dataclass
from typing import List

import numpy as np

# Values from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_END = 5
_EVENT_PHONEME = 7
_INITIALIZE_PHONEME_EVENTS = 0x0001
_PHONEME_SEPARATOR = ord("|")
# Phoneme mnemonics that modify a neighbour and take no time of their own.
_MODIFIERS = frozenset({";"})
_PARAM_RATE = 1
_PARAM_PITCH = 3
_PARAM_RANGE = 4
_EE_OK = 0


class _EventId(ctypes.Union):
    _fields_ = [
        ("number", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("string", ctypes.c_char * 8),
    ]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character position of the word
        ("length", ctypes.c_int),  # word length in characters
        ("audio_position", ctypes.c_int),  # milliseconds from the start of the output
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class EspeakUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class SynthEvent:
    """A word or phoneme event, in output order.

    ``kind`` is ``"word"``, ``"phoneme"`` or ``"end"``; ``char_start`` indexes the synthesised
    text (0-based; the word an event belongs to); ``phoneme`` is espeak's mnemonic (pauses
    start with ``_``); ``seconds`` is the position in the synthesised audio.
    """

    kind: str
    char_start: int
    seconds: float
    phoneme: str = ""

    @property
    def is_pause(self) -> bool:
        return self.kind == "phoneme" and self.phoneme.startswith("_")

    @property
    def is_sound(self) -> bool:
        """A phoneme with audio of its own (not a pause, not the ';' palatal modifier)."""
        return self.kind == "phoneme" and not self.is_pause and self.phoneme not in _MODIFIERS


@dataclass
class Synthesis:
    """Output of :meth:`EspeakSynthesizer.synthesize`.

    ``samples``: float32 (num_samples,) in [-1, 1] at ``sample_rate``;
    ``events``: word, phoneme and end events in output order.
    """

    samples: np.ndarray
    sample_rate: int
    events: List[SynthEvent]


def _load_library() -> ctypes.CDLL:
    name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
    try:
        return ctypes.CDLL(name)
    except OSError as error:
        raise EspeakUnavailable(
            "libespeak-ng is not installed; the embedded corpus needs it. "
            "Run: apt-get install -y espeak-ng (or tools/install.sh as root)."
        ) from error


class EspeakSynthesizer:
    """A thin, typed wrapper over libespeak-ng's synchronous synthesis API."""

    def __init__(self) -> None:
        self._lib = _load_library()
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self._lib.espeak_Initialize.argtypes = [
            ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int
        ]
        self.sample_rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS
        )
        if self.sample_rate <= 0:
            raise EspeakUnavailable("espeak_Initialize failed: espeak-ng-data not found?")
        self._chunks: List[np.ndarray] = []
        self._events: List[_Event] = []
        # Keep a reference: ctypes callbacks are freed when the Python object dies.
        self._callback = _SynthCallback(self._on_audio)
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        self._lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self._lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int
        ]

    def _on_audio(self, wav, num_samples, events) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type in (_EVENT_WORD, _EVENT_END, _EVENT_PHONEME):
                self._events.append(_Event.from_buffer_copy(event))
            i += 1
        return 0  # 0 = continue synthesis

    def set_voice(self, voice: str) -> None:
        if self._lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise ValueError(f"espeak-ng has no voice {voice!r}; see `espeak-ng --voices=en`")

    def phonemes(self, word: str) -> List[str]:
        """espeak's phonemes for ``word`` said alone in the current voice (stress marks dropped)."""
        text = ctypes.c_char_p(word.encode("utf-8") + b"\0")
        mode = _PHONEME_SEPARATOR << 8  # mnemonics, "|" between phonemes
        out = self._lib.espeak_TextToPhonemes(ctypes.byref(text), _ESPEAK_CHARS_UTF8, mode) or b""
        pieces = re.split(r"[| ]+", out.decode("utf-8", "replace"))
        phonemes = [p.lstrip("',%=") for p in pieces]
        return [p for p in phonemes if p and p not in _MODIFIERS and not p.startswith("_")]

    def synthesize(
        self,
        text: str,
        voice: str,
        words_per_minute: int,
        pitch: int = 50,
        pitch_range: int = 50,
    ) -> Synthesis:
        """Speak ``text`` with ``voice`` (e.g. ``"en-us+m3"``).

        ``words_per_minute`` is espeak-ng's nominal rate (80..450); ``pitch`` and
        ``pitch_range`` are 0..100.
        """
        self.set_voice(voice)
        for parameter, value in (
            (_PARAM_RATE, words_per_minute),
            (_PARAM_PITCH, pitch),
            (_PARAM_RANGE, pitch_range),
        ):
            self._lib.espeak_SetParameter(parameter, int(value), 0)
        self._chunks, self._events = [], []
        encoded = text.encode("utf-8") + b"\0"
        status = self._lib.espeak_Synth(
            encoded, len(encoded), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None
        )
        if status != _EE_OK:
            raise RuntimeError(f"espeak_Synth failed with status {status} for {text!r}")
        pcm = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        kinds = {_EVENT_WORD: "word", _EVENT_PHONEME: "phoneme", _EVENT_END: "end"}
        events = [
            SynthEvent(
                kind=kinds[e.type],
                char_start=e.text_position - 1,
                seconds=e.audio_position / 1000.0,
                phoneme=e.id.string.decode("utf-8", "replace") if e.type == _EVENT_PHONEME else "",
            )
            for e in self._events
        ]
        return Synthesis(
            samples=pcm.astype(np.float32) / 32768.0,
            sample_rate=self.sample_rate,
            events=events,
        )
