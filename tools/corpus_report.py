#!/usr/bin/env python3
"""Corpus statistics and preparation timings, as a Markdown table, from what prepare.sh wrote.

Usage:
  .venv/bin/python tools/corpus_report.py --recipe-dir egs/librispeech/ASR            # print
  .venv/bin/python tools/corpus_report.py --recipe-dir egs/librispeech/ASR --update README.md

With --update, the text between the README's "corpus-report:begin" and "corpus-report:end"
markers is replaced, so every figure there comes from this command.
"""

import argparse
import json
import re
import sys
from pathlib import Path

from lhotse import load_manifest_lazy
from icefall_kd.utils import HelpFormatter

BEGIN, END = "<!-- corpus-report:begin -->", "<!-- corpus-report:end -->"


def part_stats(manifest_dir: Path):
    stats = {}
    for path in sorted(manifest_dir.glob("librispeech_supervisions_*.jsonl.gz")):
        part = path.name[len("librispeech_supervisions_") : -len(".jsonl.gz")]
        s = {"utterances": 0, "seconds": 0.0, "speakers": set(), "words": 0,
             "speech_seconds": 0.0, "vocabulary": set()}
        for sup in load_manifest_lazy(path):
            words = sup.text.split()
            s["utterances"] += 1
            s["seconds"] += sup.duration
            s["speakers"].add(sup.speaker)
            s["words"] += len(words)
            s["vocabulary"].update(words)
            aligned = [w for w in (sup.alignment or {}).get("word", []) if w.symbol]
            if aligned:
                s["speech_seconds"] += aligned[-1].end - aligned[0].start
        stats[part] = s
    return stats


def fbank_agreement(recipe_dir: Path, num_utterances: int = 20) -> str:
    """Largest |lhotse Fbank - kaldi-native-fbank online| over some evaluation utterances."""
    import numpy as np

    from icefall_kd.data.fbank import make_fbank_extractor, online_fbank

    cuts_path = recipe_dir / "data" / "fbank" / "librispeech_cuts_test-other.jsonl.gz"
    worst, count = 0.0, 0
    for cut in load_manifest_lazy(cuts_path):
        samples = cut.load_audio()[0]
        offline = make_fbank_extractor().extract(samples, cut.sampling_rate)
        worst = max(worst, float(np.abs(offline - online_fbank(samples, 1234)).max()))
        count += 1
        if count == num_utterances:
            break
    return (
        f"Training fbank vs sherpa-onnx's online fbank (kaldi-native-fbank, 1234-sample pieces) "
        f"on {count} test-other utterances: largest difference {worst:.1e} (log-mel units)."
    )


def render(recipe_dir: Path, repo_dir: Path) -> str:
    data = recipe_dir / "data"
    config = (data / ".config").read_text().strip() if (data / ".config").exists() else "?"
    stats = part_stats(data / "manifests")
    if not stats:
        sys.exit(f"no manifests under {data / 'manifests'}; run prepare.sh first")
    train = next((p for p in stats if p.startswith("train")), None)
    lines = [
        f"Prepared with `{config.split(' dl_dir=')[0]}`.",
        "",
        "| part | utterances | hours | speakers | distinct words | words/s of speech | "
        "eval words unseen in training |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for part, s in stats.items():
        rate = s["words"] / s["speech_seconds"] if s["speech_seconds"] else float("nan")
        oov = "-"
        if train and part != train:
            oov = f"{len(s['vocabulary'] - stats[train]['vocabulary'])}"
        lines.append(
            f"| {part} | {s['utterances']} | {s['seconds'] / 3600:.2f} | {len(s['speakers'])} | "
            f"{len(s['vocabulary'])} | {rate:.2f} | {oov} |"
        )
    lines.append("")
    timings = data / "timings.tsv"
    if timings.exists():
        rows = [line.split("\t") for line in timings.read_text().splitlines() if line]
        lines += ["| prepare.sh stage | wall seconds (2 cores) |", "|---|---:|"]
        lines += [f"| {name} | {seconds} |" for name, seconds in rows]
        total = sum(int(seconds) for _, seconds in rows)
        lines += [f"| **total** | **{total}** |", ""]
    summaries = list(recipe_dir.glob("download/tts-*/tts-corpus-*.json"))
    for summary_path in summaries:
        summary = json.loads(summary_path.read_text())
        if f"profile={summary['profile']['name']}" not in config:
            continue
        left_out = sum(p["inexact"] for p in summary["parts"].values())
        per_part = ", ".join(
            f"{part} {p['wall_seconds']:.0f} s with {p.get('num_jobs', summary['num_jobs'])} jobs"
            for part, p in summary["parts"].items())
        lines.append(
            f"Synthesis of the `{summary['profile']['name']}` profile: "
            f"{summary['wall_seconds']:.0f} s ({per_part}), from "
            f"{summary['source_sentences']} candidate sentences; {left_out} sentences left out "
            "because espeak-ng's events did not give exact word times."
        )
        lines.append("")
    lines.append(fbank_agreement(recipe_dir))
    lines.append("")
    install_seconds = repo_dir / ".venv" / ".install-seconds"
    if install_seconds.exists():
        seconds, cache = install_seconds.read_text().split()
        lines.append(
            f"Last full run of `tools/install.sh` into a new `.venv` on this machine: {seconds} s "
            f"(pinned wheels + fast_rnnt build; pip's cache {cache})."
        )
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--recipe-dir", type=Path, default=Path("egs/librispeech/ASR"))
    parser.add_argument("--update", type=Path, default=None,
                        help="A Markdown file whose corpus-report section is replaced")
    args = parser.parse_args()
    repo_dir = Path(__file__).resolve().parents[1]
    report = render(args.recipe_dir, repo_dir)
    if args.update is None:
        print(report)
        return
    text = args.update.read_text()
    if BEGIN not in text or END not in text:
        sys.exit(f"{args.update} has no {BEGIN} ... {END} section")
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    args.update.write_text(pattern.sub(lambda _: f"{BEGIN}\n{report}{END}", text))


if __name__ == "__main__":
    main()
