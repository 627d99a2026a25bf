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
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

# Values from espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_END = 5
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
class WordEvent:
    """One spoken word: ``char_start`` indexes the synthesised text (0-based)."""

    char_start: int
    char_length: int
    start_seconds: float


@dataclass
class Synthesis:
    """Output of :meth:`EspeakSynthesizer.synthesize`.

    ``samples``: float32 (num_samples,) in [-1, 1] at ``sample_rate``;
    ``words``: one entry per word event, in speaking order;
    ``end_seconds``: when the synthesiser reported the end of the utterance.
    """

    samples: np.ndarray
    sample_rate: int
    words: List[WordEvent]
    end_seconds: float


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
        self.sample_rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, 0)
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

    def _on_audio(self, wav, num_samples, events) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type in (_EVENT_WORD, _EVENT_END):
                self._events.append(_Event.from_buffer_copy(event))
            i += 1
        return 0  # 0 = continue synthesis

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
        if self._lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
            raise ValueError(f"espeak-ng has no voice {voice!r}; see `espeak-ng --voices=en`")
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
        words = [
            WordEvent(e.text_position - 1, e.length, e.audio_position / 1000.0)
            for e in self._events
            if e.type == _EVENT_WORD
        ]
        ends = [e.audio_position / 1000.0 for e in self._events if e.type == _EVENT_END]
        end_seconds = ends[-1] if ends else len(pcm) / self.sample_rate
        return Synthesis(
            samples=pcm.astype(np.float32) / 32768.0,
            sample_rate=self.sample_rate,
            words=words,
            end_seconds=end_seconds,
        )
