"""Stage stamps: what a preparation stage read, so a rerun redoes exactly the stale work.

A stamp is a JSON file (a stage's ``.done`` marker) mapping each *unit* of the stage's work
(a corpus part, a vocabulary) to the fingerprint of the inputs that unit read and the options
it ran with. A unit is stale when it has no entry, or when its inputs or options differ from
the entry. Fingerprints:

- a folder (the audio of a part): every file's relative path, size and modification time,
  so adding, removing, replacing or touching a file changes it; it costs one ``stat`` per file
  (seconds for all of LibriSpeech), never a read;
- a file (a manifest): its content, decompressed for ``.gz`` so that re-gzipping identical
  text (gzip headers hold a time) does not count as a change;
- a missing path: the word ``missing``.

A marker written by an older version is an empty file: it records nothing, so its units are
trusted as they are and their current fingerprints recorded (:func:`adopt_legacy`), which
keeps existing data/ folders from being recomputed after an upgrade.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence

MISSING = "missing"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _folder_digest(path: Path) -> Dict[str, object]:
    digest, count = hashlib.sha256(), 0
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = Path(root) / name
            info = full.stat()
            digest.update(f"{full.relative_to(path)}\t{info.st_size}\t{info.st_mtime_ns}\n".encode())
            count += 1
    return {"digest": digest.hexdigest(), "files": count}


def fingerprint(path: Path) -> Dict[str, object]:
    """{"digest": ..., and "files": N for a folder} of one input path (see the module doc)."""
    path = Path(path)
    if path.is_dir():
        return _folder_digest(path)
    if path.is_file():
        return {"digest": _file_digest(path)}
    return {"digest": MISSING}


@dataclass
class Unit:
    """One unit of a stage's work: its name, the paths it reads and the options it runs with."""

    name: str
    inputs: List[Path]
    options: str = ""

    def entry(self) -> Dict[str, object]:
        return {"options": self.options,
                "inputs": {str(p): fingerprint(p) for p in self.inputs}}


def read_stamp(stamp: Path) -> Dict[str, dict]:
    """The units a stamp records ({} for a missing stamp); ValueError for an unreadable one."""
    stamp = Path(stamp)
    if not stamp.is_file():
        return {}
    text = stamp.read_text()
    if not text.strip():
        return {}
    try:
        units = json.loads(text)["units"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{stamp} is not a stage stamp; delete it to redo that stage") from None
    return units


def is_legacy(stamp: Path) -> bool:
    """An empty marker, as versions before stage stamps wrote (``touch``)."""
    stamp = Path(stamp)
    return stamp.is_file() and not stamp.read_text().strip()


def why_stale(recorded: dict, current: Dict[str, object]) -> str:
    """'' when ``current`` equals ``recorded``, else what changed, in words."""
    if recorded.get("options") != current["options"]:
        return f"options changed ({recorded.get('options')!r} -> {current['options']!r})"
    reasons = []
    old_inputs = recorded.get("inputs", {})
    for path, now in current["inputs"].items():
        before = old_inputs.get(path)
        if before == now:
            continue
        if before is None:
            reasons.append(f"{path} is a new input")
        elif now["digest"] == MISSING:
            reasons.append(f"{path} is gone")
        elif "files" in now and before.get("files") != now["files"]:
            reasons.append(f"{path} now holds {now['files']} files (was {before.get('files')})")
        else:
            reasons.append(f"{path} changed")
    for path in old_inputs:
        if path not in current["inputs"]:
            reasons.append(f"{path} is no longer an input")
    return "; ".join(reasons)


def stale_units(stamp: Path, units: Sequence[Unit]) -> Dict[str, str]:
    """{unit name: why it must be redone} for the units whose stamp entry is missing or out of
    date; units a legacy (empty) marker covers count as up to date."""
    if is_legacy(stamp):
        return {}
    recorded = read_stamp(stamp)
    stale = {}
    for unit in units:
        if unit.name not in recorded:
            stale[unit.name] = "not done yet"
        else:
            reason = why_stale(recorded[unit.name], unit.entry())
            if reason:
                stale[unit.name] = reason
    return stale


def record(stamp: Path, units: Sequence[Unit]) -> None:
    """Records ``units``' current fingerprints in ``stamp`` (others kept), atomically."""
    stamp = Path(stamp)
    entries = read_stamp(stamp)
    for unit in units:
        entries[unit.name] = unit.entry()
    stamp.parent.mkdir(parents=True, exist_ok=True)
    tmp = stamp.with_name(stamp.name + ".tmp")
    tmp.write_text(json.dumps({"units": entries}, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, stamp)


def adopt_legacy(stamp: Path, units: Sequence[Unit]) -> bool:
    """Turns an empty (legacy) marker into a stamp of the current inputs; True if it did."""
    if not is_legacy(stamp):
        return False
    Path(stamp).unlink()
    record(stamp, units)
    return True
