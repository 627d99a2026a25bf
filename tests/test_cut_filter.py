"""The training cut filter: what it drops, and that it says why."""

from lhotse import SupervisionSegment
from lhotse.testing.dummies import dummy_cut

from icefall_kd.data.filters import TrainingCutFilter
from icefall_kd.model.subsampling import frames_after_subsampling


class _CharTokens:
    """Stands in for sentencepiece: one token per character."""

    def encode(self, text, out_type=int):
        return list(range(len(text)))


def _cut(duration, text):
    cut = dummy_cut(0, duration=duration, with_data=False)
    cut.supervisions = [SupervisionSegment("s", cut.recording_id, 0, duration, text=text)]
    return cut


def test_frames_after_subsampling_matches_real_convolutions():
    """Two 3x3 convolutions with stride 2 (the Conformer's 4x subsampling): count the real
    output frames."""
    import torch

    convs = torch.nn.Sequential(
        torch.nn.Conv2d(1, 1, 3, stride=2), torch.nn.Conv2d(1, 1, 3, stride=2)
    )
    for t in list(range(7, 60)) + [101, 250, 999]:
        with torch.no_grad():
            expected = convs(torch.zeros(1, 1, t, 80)).shape[2]
        assert frames_after_subsampling(t) == expected, t


def test_filter_drops_and_counts_each_reason():
    keep = TrainingCutFilter(_CharTokens(), min_seconds=1.0, max_seconds=20.0)
    cuts = [
        _cut(0.5, "AB"),  # too short
        _cut(25.0, "AB"),  # too long
        _cut(1.0, "X" * 30),  # 100 frames -> 24 encoder frames < 30 tokens
        _cut(5.0, "HELLO"),  # kept
        _cut(2.0, "Y" * 49),  # 200 frames -> 49 >= 49: kept
    ]
    kept = [c for c in cuts if keep(c)]
    assert [c.duration for c in kept] == [5.0, 2.0]
    assert keep.counts == {
        "shorter than 1.0 s": 1,
        "longer than 20.0 s": 1,
        "fewer encoder frames than tokens (T < S)": 1,
        "kept": 2,
    }
    assert "kept 2 of 5 cuts" in keep.summary() and "1 longer than 20.0 s" in keep.summary()
