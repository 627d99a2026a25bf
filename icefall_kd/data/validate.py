"""Checks a cut manifest before training trusts it (icefall's ``validate_manifest.py``).

Every message names the cut and says what is wrong with it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import List

from lhotse import load_manifest_lazy
from lhotse.cut import Cut

from icefall_kd.data.fbank import FEATURE_DIM


def cut_problems(cut: Cut, expect_features: bool = True) -> List[str]:
    problems = []
    if len(cut.supervisions) != 1:
        problems.append(f"has {len(cut.supervisions)} supervisions, expected 1")
        return problems
    sup = cut.supervisions[0]
    if sup.start < -1e-3 or sup.end > cut.duration + 1e-3:
        problems.append(
            f"supervision [{sup.start:.3f}, {sup.end:.3f}] s lies outside the cut "
            f"[0, {cut.duration:.3f}] s"
        )
    if not (sup.text or "").strip():
        problems.append("empty supervision text")
    words = (sup.alignment or {}).get("word")
    if words:
        previous_end = 0.0
        for item in words:
            if item.start + 1e-3 < previous_end or item.duration < 0:
                problems.append(f"word alignment not monotonic at '{item.symbol}' ({item.start} s)")
                break
            previous_end = item.start + item.duration
        if previous_end > cut.duration + 1e-2:
            problems.append(f"word alignment ends at {previous_end:.3f} s, after the cut")
        aligned = [w.symbol for w in words if w.symbol]
        if aligned != sup.text.split():
            problems.append("word alignment symbols differ from the transcript")
    if expect_features:
        if not cut.has_features:
            problems.append("no features; run the fbank stage of prepare.sh")
        else:
            if cut.num_features != FEATURE_DIM:
                problems.append(f"feature dim {cut.num_features}, expected {FEATURE_DIM}")
            expected = round(cut.duration / cut.frame_shift)
            if abs(cut.num_frames - expected) > 1:
                problems.append(
                    f"{cut.num_frames} feature frames for {cut.duration:.3f} s (expected ~{expected})"
                )
    return problems


def validate_cuts_manifest(path: Path, expect_features: bool = True) -> int:
    """Raises ValueError listing every bad cut (at most 20 shown); returns the cut count."""
    count, bad = 0, []
    for cut in load_manifest_lazy(path):
        count += 1
        for problem in cut_problems(cut, expect_features):
            bad.append(f"  cut {cut.id}: {problem}")
    if count == 0:
        raise ValueError(f"{path} holds no cuts; re-run the fbank stage of prepare.sh")
    if bad:
        shown = "\n".join(bad[:20]) + (f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else "")
        raise ValueError(f"{path}: {len(bad)} problem(s):\n{shown}")
    return count


_SPEED_SUFFIX = re.compile(r"_sp[0-9.]+$")


def check_cuts_match_supervisions(cuts_path: Path, supervisions_path: Path) -> None:
    """Raises ValueError, naming both files, unless the cuts hold exactly the utterances of
    the supervision manifest (speed-perturbed copies, ``<id>_sp0.9``, count as their source)
    with the same text: features older than their manifests are caught here."""
    if not Path(supervisions_path).is_file():
        raise ValueError(f"{supervisions_path} not found: the manifest stage of prepare.sh "
                         f"writes it, and {cuts_path} was made from it")
    expected = {s.id: s.text for s in load_manifest_lazy(supervisions_path)}
    found = {}
    for cut in load_manifest_lazy(cuts_path):
        for sup in cut.supervisions:
            found[_SPEED_SUFFIX.sub("", sup.id)] = sup.text
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    changed = sorted(i for i in set(expected) & set(found) if expected[i] != found[i])
    if not (missing or extra or changed):
        return
    problems = [f"{len(what)} {label}, e.g. {what[0]}" for what, label in (
        (missing, "utterance(s) of the manifest missing from the cuts"),
        (extra, "utterance(s) in the cuts that the manifest no longer has"),
        (changed, "utterance(s) whose text differs")) if what]
    raise ValueError(
        f"{cuts_path} does not match {supervisions_path}: {'; '.join(problems)}. The features "
        "are older than the manifests: rerun ./prepare.sh, which redoes the fbank stage for "
        "parts whose manifests changed (or delete the cuts file and data/.fbank.done)"
    )
