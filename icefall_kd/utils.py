"""Small helpers shared by the library and the recipe scripts."""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator, Optional


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yields a temporary path beside ``path``; renames it to ``path`` only on success.

    The temporary name keeps the final suffixes (``x.jsonl.gz`` -> ``x.tmp.jsonl.gz``) so that
    writers that choose a format from the suffix (lhotse) still do the right thing.
    """
    path = Path(path)
    suffixes = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(suffixes)] if suffixes else path.name
    tmp = path.with_name(f"{stem}.tmp{os.getpid()}{suffixes}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_manifest(manifest: Any, path: Path) -> None:
    """Writes a lhotse manifest (anything with ``to_dicts()``) as JSON lines, atomically.

    ``.gz`` output carries no time or file name in its header (lhotse's writer stores the
    time), so the same manifest always gives the same bytes: a redone stage can be checked
    against a clean run with ``cmp``.
    """
    path = Path(path)
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as raw:
            if path.suffix == ".gz":
                stream = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
            else:
                stream = raw
            with io.TextIOWrapper(stream, encoding="utf-8") as text:
                for item in manifest.to_dicts():
                    print(json.dumps(item, ensure_ascii=False), file=text)


def setup_logging(verbose: bool = False) -> None:
    """icefall's log format: time, level, file:line, message."""
    logging.basicConfig(
        format="%(asctime)s %(levelname)s [%(filename)s:%(lineno)d] %(message)s",
        level=logging.DEBUG if verbose else logging.INFO,
        force=True,
    )


def str2bool(value: str) -> bool:
    """argparse type for icefall-style ``--flag true/false`` options."""
    lowered = str(value).lower()
    if lowered in ("1", "true", "yes", "y", "t"):
        return True
    if lowered in ("0", "false", "no", "n", "f"):
        return False
    # ArgumentTypeError, not ValueError: argparse shows its message (a ValueError becomes
    # "invalid str2bool value").
    raise argparse.ArgumentTypeError(
        f"expected a boolean (true/false, yes/no, 1/0), got {value!r}")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """--help keeps the script's Usage block as written and shows every default."""


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux reports KB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine_description() -> str:
    """The CPU, its core count and its native bf16 support, e.g. "Intel(R) Xeon(R) Processor,
    2 cores, bf16: AMX": speed figures depend on it, and sessions run on different CPUs."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    import torch

    if torch.cpu._is_amx_tile_supported():
        bf16 = "AMX"
    elif torch.cpu._is_avx512_bf16_supported():
        bf16 = "AVX512-BF16, no AMX"
    else:
        bf16 = "none native"
    return f"{model or 'unknown CPU'}, {os.cpu_count()} cores, bf16: {bf16}"


def publish_report(text: str, output: Optional[Path]) -> None:
    """Prints a benchmark's Markdown report, headed by the machine it ran on, and, with
    ``output``, writes it there atomically."""
    text = f"Machine: {machine_description()}.\n\n{text}"
    print(text)
    if output:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(output) as tmp:
            tmp.write_text(text)
