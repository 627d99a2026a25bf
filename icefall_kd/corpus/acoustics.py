"""Room and channel effects for the synthetic corpus, generated in code (no downloads)."""

from __future__ import annotations

import numpy as np
from scipy.signal import fftconvolve, resample_poly


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Polyphase resampling, e.g. espeak-ng's 22050 Hz to LibriSpeech's 16000 Hz."""
    if from_rate == to_rate:
        return samples
    divisor = np.gcd(from_rate, to_rate)
    return resample_poly(samples, to_rate // divisor, from_rate // divisor).astype(np.float32)


def synthetic_room_impulse_response(
    rng: np.random.Generator, sample_rate: int, rt60_seconds: float
) -> np.ndarray:
    """A direct path plus exponentially decaying noise (60 dB down after ``rt60_seconds``)."""
    length = int(rt60_seconds * sample_rate)
    t = np.arange(length) / sample_rate
    tail = rng.standard_normal(length) * np.exp(-6.908 * t / rt60_seconds)
    tail *= 0.3 / np.sqrt(np.sum(tail**2))  # direct-to-reverberant ratio of about 10 dB
    tail[0] = 1.0
    return tail.astype(np.float32)


def pink_noise(rng: np.random.Generator, num_samples: int) -> np.ndarray:
    """Noise with a 1/f power spectrum, unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1.0))
    noise = np.fft.irfft(spectrum, n=num_samples)
    return (noise / (np.sqrt(np.mean(noise**2)) + 1e-12)).astype(np.float32)


def add_noise(
    rng: np.random.Generator, speech: np.ndarray, snr_db: float, speech_rms: float
) -> np.ndarray:
    noise = pink_noise(rng, len(speech)) * speech_rms / (10 ** (snr_db / 20))
    return speech + noise


def reverberate(rng: np.random.Generator, speech: np.ndarray, sample_rate: int,
                rt60_seconds: float) -> np.ndarray:
    """Convolve with a synthetic room; output keeps the input's length and timing."""
    rir = synthetic_room_impulse_response(rng, sample_rate, rt60_seconds)
    return fftconvolve(speech, rir)[: len(speech)].astype(np.float32)
