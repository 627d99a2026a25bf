"""Training features (lhotse Fbank) against sherpa-onnx's online front end
(kaldi-native-fbank fed chunk by chunk) on the same audio."""

import numpy as np
import soundfile as sf

from icefall_kd.data.fbank import make_fbank_extractor, online_fbank

# Measured: at most 2.7e-4 over 40 default-profile test-other utterances (float32 rounding in two
# FFT implementations), on log-mel values of magnitude 1..20. 2e-3 leaves a margin and still
# catches any setting that differs (high_freq=0 instead of -400 gives differences of ~3).
TOLERANCE = 2e-3


def test_lhotse_fbank_equals_online_kaldi_native_fbank(tiny_corpus):
    flacs = sorted((tiny_corpus / "test-clean").rglob("*.flac"))[:4]
    worst = 0.0
    for flac in flacs:
        samples, rate = sf.read(str(flac), dtype="float32")
        offline = make_fbank_extractor().extract(samples, rate)
        online = online_fbank(samples, chunk_samples=1234)  # odd chunks, as audio arrives
        assert offline.shape == online.shape, (flac, offline.shape, online.shape)
        worst = max(worst, float(np.abs(offline - online).max()))
    assert worst < TOLERANCE, worst
