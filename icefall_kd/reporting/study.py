"""The distillation study's section of RESULTS.md (``study.sh``), from its output folder.

Every model is a folder per seed under ``study/`` (see study.sh); its final checkpoint is the
one study.sh decoded on the test sets: the best dev-clean epoch of a training that ran until
converged (``convergence.json``), or the last epoch of one with a fixed budget
(``budget.json``). Results are read from decode.py's files for ``--epoch E --avg 1
--use-averaged-model``, greedy search (one symbol per frame) unless stated.
"""

from __future__ import annotations

import datetime
import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from icefall_kd.reporting import paired_bootstrap as pb
from icefall_kd.reporting.learning_curve import plot_learning_curves, read_curve
from icefall_kd.reporting.result_key import ResultKey
from icefall_kd.training.checkpoint import OPTIMIZER_LABELS, load_checkpoint, saved_optimizer
from icefall_kd.training.trainer import DEFAULT_BASE_LR

TEST_SETS = ("test-clean", "test-other")
TEACHERS = (("teacher", "run.sh's teacher preset"), ("strong", "the stronger teacher"))
STUDY_HEADING = "## The distillation study (`study.sh`)"
# The sections write_results.py puts after the study's, in its order.
_SECTIONS_AFTER_STUDY = ("## sherpa-onnx", "## Run time", "## Commands")


def summary(exp_dir: Path, name: str = "convergence.json") -> Optional[dict]:
    path = Path(exp_dir) / name
    return json.loads(path.read_text()) if path.is_file() else None


def final_epoch(exp_dir: Path) -> Optional[int]:
    """The epoch study.sh decodes on the test sets (its stage 5's rule)."""
    budget, converged = summary(exp_dir, "budget.json"), summary(exp_dir)
    if budget is not None:
        return budget["epochs"]
    return converged["best_epoch"] if converged else None


@dataclass(frozen=True)
class Decoded:
    """One decoded checkpoint: where its files are and what they are called."""
    exp_dir: Path
    epoch: int
    chunk: Optional[int]
    left: Optional[int]
    method: str = "greedy_search"

    def key(self) -> ResultKey:
        beam = 4 if self.method == "modified_beam_search" else None
        return ResultKey(self.epoch, 1, self.chunk, self.left, beam_size=beam,
                         use_averaged_model=True)

    def path(self, kind: str, test_set: str, ext: str) -> Path:
        return self.exp_dir / self.method / f"{kind}-{test_set}-{self.key().to_suffix()}.{ext}"

    def wer(self, test_set: str) -> Optional[float]:
        path = self.path("wer-summary", test_set, "txt")
        return float(path.read_text().splitlines()[1].split("\t")[1]) if path.is_file() else None

    def errors(self, test_set: str) -> Optional[dict]:
        path = self.path("recogs", test_set, "txt")
        return pb.utterance_errors(path) if path.is_file() else None

    def latencies(self) -> Dict[str, Tuple[Optional[float], List[float]]]:
        out = {}
        for test_set in TEST_SETS:
            path = self.path("timestamps", test_set, "jsonl")
            if path.is_file():
                out.update({f"{test_set}/{c}": v for c, v in pb.utterance_latencies(path).items()})
        return out


def _mean_text(values: Sequence[Optional[float]]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.fmean(values):.2f} ± {(max(values) - min(values)) / 2:.2f}"


def paired(models: Sequence[Decoded], baselines: Sequence[Decoded]) -> Dict[str, Optional[pb.Interval]]:
    """Intervals of ``models`` (one per seed) against ``baselines`` (the same seeds)."""
    out: Dict[str, Optional[pb.Interval]] = {}
    for test_set in TEST_SETS:
        pairs = [(b.errors(test_set), m.errors(test_set)) for m, b in zip(models, baselines)]
        pairs = [p for p in pairs if p[0] and p[1]]
        out[test_set] = pb.relative_wer_reduction(pairs) if pairs else None
    lat = [(b.latencies(), m.latencies()) for m, b in zip(models, baselines)]
    lat = [p for p in lat if p[0] and p[1]]
    out.update(pb.latency_differences(lat))
    return out


def _iv(interval: Optional[pb.Interval], latency: bool = False) -> str:
    if interval is None:
        return "-"
    return interval.text(scale=1000, digits=0) if latency else interval.text(scale=100, unit="%")


def _verdict(name: str, against: str, iv: Dict[str, Optional[pb.Interval]]) -> str:
    wer = [iv.get(t) for t in TEST_SETS]
    if None in wer:
        return f"- {name} against {against}: not decoded on both test sets."
    if all(i.low > 0 for i in wer):
        verdict = "fewer errors on both test sets (both intervals above zero)"
    elif all(i.high < 0 for i in wer):
        verdict = "more errors on both test sets (both intervals below zero)"
    else:
        verdict = "no difference established (an interval includes zero)"
    first = iv.get("first token")
    if first is not None and first.excludes_zero:
        verdict += f"; first token {'earlier' if first.high < 0 else 'later'} (interval excludes zero)"
    return f"- {name} against {against}: {verdict}."


def optimizer_text(exp_dir: Path) -> Optional[str]:
    """"ScaledAdam at 0.045": the optimiser and peak rate that trained the study's final
    checkpoint of ``exp_dir`` (as its checkpoint records them); None before there is one."""
    epoch = final_epoch(exp_dir)
    path = Path(exp_dir) / f"epoch-{epoch}.pt"
    if epoch is None or not path.is_file():
        return None
    state = load_checkpoint(path)
    name = saved_optimizer(state)
    lr = str((state.get("args") or {}).get("base_lr"))  # the args are kept as text
    if lr in ("None", ""):  # no --base-lr: the trainer's default for that optimiser
        lr = str(DEFAULT_BASE_LR.get(name, "?"))
    return f"{OPTIMIZER_LABELS.get(name, name)} at {lr}"


def continues_training(exp_dir: Path) -> bool:
    """Whether the final checkpoint of ``exp_dir`` continued the training it started from
    (``--init-state training``) rather than only its weights."""
    epoch = final_epoch(exp_dir)
    path = Path(exp_dir) / f"epoch-{epoch}.pt"
    if epoch is None or not path.is_file():
        return False
    return (load_checkpoint(path).get("args") or {}).get("init_state") == "training"


def convergence_lines(study_dir: Path, seeds: Sequence[int]) -> List[str]:
    """Markdown: how each training that ran until converged stopped (the stopping rule or
    its budget) and the relative dev-clean gain of its last epoch, the curve's slope there."""
    folders = ["teacher", "teacher-strong"] + [f"baseline-seed{s}" for s in seeds]
    folders += [f"{stage}-{t}-seed{s}" for t, _ in TEACHERS for s in seeds
                for stage in ("ft1", "ft2")]
    folders += [f"scratch1-seed{s}" for s in seeds]
    rows = []
    for folder in folders:
        done = summary(study_dir / folder)
        if done is None:
            continue
        best = done["wers"][str(done["best_epoch"])]
        gain = done["last_relative_gain"]  # None after a single epoch
        rows.append(f"| {folder} | {done['epochs']} | {done['best_epoch']} | {best:.2f} | "
                    f"{done['stopped_by']} | {'-' if gain is None else f'{100 * gain:+.1f}%'} |")
    if not rows:
        return []
    return ["Trainings run until converged (`convergence.json` of each folder; baselines "
            "before they were trained on to the common epochs): the rule stops once an epoch "
            "improves the best dev-clean WER by less than 2% relative.", "",
            "| training | epochs | best dev epoch | best dev-clean WER | stopped by | last "
            "epoch's relative dev gain |", "|---|---:|---:|---:|---|---:|"] + rows


def selection_lines(study_dir: Path) -> List[str]:
    """Markdown: stage 3's candidates (``study/select/``), their dev-clean WER, and the
    settings it chose (``study/selected-kd.tsv``)."""
    chosen_file = Path(study_dir) / "selected-kd.tsv"
    rows = []
    for exp in sorted((Path(study_dir) / "select").glob("ft[12]-*")):
        done = summary(exp, "budget.json")
        if done is None:
            continue
        wers, best = done["wers"], done["best_epoch"]
        stage = "stage 1" if exp.name.startswith("ft1-") else "stage 2"
        setting = exp.name[4:].replace("hidden", "MSE weight ").replace(
            "output", "KL weight ").replace("-floor", ", entropy floor ")
        rows.append(f"| {stage} | {setting} | {len(wers)} | {best} | {wers[str(best)]:.2f} |")
    if not rows or not chosen_file.is_file():
        return []
    chosen = dict(line.split("\t") for line in chosen_file.read_text().splitlines() if line)
    return ["Distillation settings (stage 3 of study.sh): chosen on dev-clean with seed 1 and "
            "run.sh's teacher, each candidate fine-tuned from the first seed's baseline; "
            "stage-2 candidates start from the best stage-1 candidate. Chosen: MSE weight "
            f"{chosen['hidden_kd_scale']}, KL weight {chosen['output_kd_scale']}, entropy "
            f"floor {chosen['kd_entropy_floor']} (`study/selected-kd.tsv`), used by every "
            "teacher, seed and design below.", "",
            "| candidate of | setting | epochs | best dev epoch | best dev-clean WER |",
            "|---|---|---:|---:|---:|"] + rows


@dataclass(frozen=True)
class StudyRun:
    """One invocation of study.sh, from its ``study/run-time/*.tsv`` file."""
    stages: str
    started: int
    last_seen: int
    status: str  # finished, running (stopped from outside when it is not), writing-results
    cpus: str
    commit: str

    @property
    def seconds(self) -> int:
        return self.last_seen - self.started


# How the table reads a run's last status.
ENDED = {"finished": "finished", "running": "stopped from outside",
         "writing-results": "this run, writing RESULTS.md"}


def study_runs(study_dir: Path) -> List[StudyRun]:
    """study.sh's invocations in the order they started. A run killed before it ended (a
    session ending) counts up to its last once-a-minute record."""
    runs = []
    for path in sorted((Path(study_dir) / "run-time").glob("*.tsv")):
        rows = path.read_text().splitlines()
        if len(rows) != 2:
            raise ValueError(f"{path}: expected a header and one row, got {len(rows)} lines; "
                             "delete the file if it is not study.sh's")
        row = dict(zip(rows[0].split("\t"), rows[1].split("\t")))
        try:
            runs.append(StudyRun(row["stages"], int(row["started"]), int(row["last_seen"]),
                                 row["status"], row.get("cpus", "?"),
                                 row.get("commit", "?")))
        except (KeyError, ValueError) as error:
            raise ValueError(f"{path}: not a study.sh run-time record ({error}); delete it "
                             "if it is not study.sh's") from error
    return sorted(runs, key=lambda r: r.started)


def run_time_lines(runs: Sequence[StudyRun]) -> List[str]:
    """Markdown: the study's wall time, in total and run by run."""
    if not runs:
        return []
    total = sum(r.seconds for r in runs)
    cpus = sorted({r.cpus for r in runs})
    lines = [f"Wall time of the study: {total / 3600:.1f} hours in {len(runs)} run"
             f"{'s' if len(runs) > 1 else ''} of study.sh on {' or '.join(cpus)} CPUs "
             "(`study/run-time/`; a run stopped from outside counts up to its last "
             "once-a-minute record, and resumed where it stopped):", "",
             "| run | stages | started (UTC) | commit | minutes | ended |",
             "|---:|---|---|---|---:|---|"]
    for i, r in enumerate(runs, 1):
        started = datetime.datetime.fromtimestamp(r.started, datetime.timezone.utc)
        lines.append(f"| {i} | {r.stages} | {started:%Y-%m-%d %H:%M} | {r.commit} | "
                     f"{r.seconds / 60:.1f} | {ENDED.get(r.status, r.status)} |")
    return lines


def study_section(study_dir: Path, chunk: int, left: int) -> List[str]:
    """Markdown lines of the study; [] when study.sh has not decoded a baseline yet. The
    seeds are the baseline-seedS folders 1, 2, ... that exist."""
    study_dir = Path(study_dir)
    seeds = 0
    while (study_dir / f"baseline-seed{seeds + 1}").is_dir():
        seeds += 1
    base_epochs_file = study_dir / "baseline-epochs"
    if not base_epochs_file.is_file():
        return []
    base_epochs = int(base_epochs_file.read_text())
    seed_list = list(range(1, seeds + 1))
    baselines = [Decoded(study_dir / f"baseline-seed{s}", base_epochs, chunk, left) for s in seed_list]
    if baselines[0].wer("test-clean") is None:
        return []
    lines = ["", STUDY_HEADING, "",
             "Every choice below was made on dev-clean, never on a test set: the distillation "
             "weights and entropy floor by a search (below), and every training's length by "
             "one rule: it runs one epoch at a time and stops once an epoch improves the best "
             "dev-clean WER by less than 2% relative (or at its budget); the checkpoint kept "
             "is its best dev epoch. Baselines: every seed trained on to the slowest seed's "
             f"epochs ({base_epochs}), so all have the same updates. The test sets were decoded "
             "once, with the final models. WER in %, greedy search in simulated streaming "
             f"({chunk * 40} ms chunks, {left * 40} ms left context); several seeds: mean ± half "
             "the range. Intervals: paired bootstrap over test utterances and seeds, seed i "
             f"against baseline seed i, {pb.DEFAULT_RESAMPLES} replicates, 95% percentile "
             "intervals (`icefall_kd/reporting/paired_bootstrap.py`).", ""]
    roles = (("the teachers and baselines", study_dir / "baseline-seed1"),
             ("the distillation stages", study_dir / "ft1-teacher-seed1"),
             ("the control", study_dir / "control-seed1"),
             ("from-scratch stage 1", study_dir / "scratch1-seed1"))
    trained = [(role, text) for role, exp in roles if (text := optimizer_text(exp))]
    if trained:
        lines += ["Optimisers, as the first seed's checkpoints record them (peak rates under "
                  "the Eden schedule): " + "; ".join(f"{role}, {text}" for role, text in trained)
                  + ".", ""]
    continued = [role for role, exp in (*roles[1:3], ("from-scratch stage 2",
                                                      study_dir / "scratch2-seed1"))
                 if continues_training(exp)]
    if continued:
        lines += [", ".join(continued).capitalize() + ": each continues the training it starts "
                  "from (`--init-state training`: its optimizer state, schedule position, "
                  "running average, update count and data order carry on)"
                  + (", so the method and its control differ by their loss alone"
                     if continued[:2] == ["the distillation stages", "the control"] else "")
                  + ".", ""]
    se = [(t, pb.wer_standard_error(e), len(e)) for t in TEST_SETS
          if (e := baselines[0].errors(t)) is not None]
    if se:
        lines += ["Test-set size alone gives one model's WER a bootstrap standard error of "
                  + " and ".join(f"{v:.2f} points on {t} ({n} utterances)" for t, v, n in se)
                  + " (the first seed's baseline).", ""]
    # Teachers.
    lines += ["| teacher | epochs (best dev) | dev-clean | test-clean | test-other |",
              "|---|---:|---:|---:|---:|"]
    for name, description in TEACHERS:
        exp = study_dir / ("teacher" if name == "teacher" else "teacher-strong")
        epoch = final_epoch(exp)
        if epoch is None:
            continue
        d = Decoded(exp, epoch, None, None)
        lines.append(f"| {description} | {epoch} | " + " | ".join(
            _mean_text([d.wer(t)]) for t in ("dev-clean",) + TEST_SETS) + " |")
    for part in (selection_lines(study_dir), convergence_lines(study_dir, seed_list)):
        lines += [""] + part if part else []
    verdicts: List[str] = []
    # The fine-tuning design, one table per teacher.
    for name, description in TEACHERS:
        methods, controls = [], []
        for s in seed_list:
            ft1, ft2 = study_dir / f"ft1-{name}-seed{s}", study_dir / f"ft2-{name}-seed{s}"
            e1, e2 = final_epoch(ft1), final_epoch(ft2)
            if e1 is None or e2 is None:
                break
            methods.append(Decoded(ft2, e2, chunk, left))
            controls.append(Decoded(study_dir / f"control-seed{s}", e1 + e2, chunk, left))
        if not methods or methods[0].wer("test-clean") is None:
            continue
        n = len(methods)
        vs_base, vs_control = paired(methods, baselines[:n]), paired(methods, controls)
        control_vs_base = paired(controls, baselines[:n])
        lines += ["", f"**Fine-tuning design, {description}.** Students start from the converged "
                  "baseline of their seed; the control is that baseline trained on without a "
                  "teacher for as many epochs as the student's two stages took. Epochs after the "
                  "baseline per seed: " + ", ".join(
                      f"{c.epoch}" for c in controls) + ".", "",
                  "| model | seeds | test-clean | test-other | rel. WER reduction vs baseline, "
                  "95% CI (clean / other) | vs control (clean / other) | first token vs "
                  "baseline, ms | symbol delay vs baseline, ms |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for label, models, iv, ivc in (("baseline", baselines[:n], None, None),
                                       ("control (no teacher)", controls, control_vs_base, None),
                                       ("the method", methods, vs_base, vs_control)):
            lines.append(
                f"| {label} | {n} | " + " | ".join(_mean_text([m.wer(t) for m in models])
                                                   for t in TEST_SETS)
                + f" | {' / '.join(_iv(iv[t]) for t in TEST_SETS) if iv else '-'}"
                + f" | {' / '.join(_iv(ivc[t]) for t in TEST_SETS) if ivc else '-'}"
                + f" | {_iv(iv['first token'], True) if iv else '-'}"
                + f" | {_iv(iv['symbol delay'], True) if iv else '-'} |")
        verdicts.append(_verdict(f"The method ({description}, fine-tuning)", "the baseline", vs_base))
        verdicts.append(_verdict(f"The method ({description}, fine-tuning)", "the control", vs_control))
    # The from-scratch design.
    scratch = []
    for s in seed_list:
        exp = study_dir / f"scratch2-seed{s}"
        epoch = final_epoch(exp)
        if epoch is None:
            break
        scratch.append(Decoded(exp, epoch, chunk, left))
    if scratch and scratch[0].wer("test-clean") is not None:
        n = len(scratch)
        iv = paired(scratch, baselines[:n])
        lines += ["", "**From-scratch design.** Stage 1 from random weights until converged, "
                  "then stage 2 for the rest of the baseline's epochs, so the student has had "
                  "as many updates as the baseline it is compared with.", "",
                  "| model | seeds | test-clean | test-other | rel. WER reduction vs baseline, "
                  "95% CI (clean / other) | first token vs baseline, ms | symbol delay vs "
                  "baseline, ms |", "|---|---:|---:|---:|---:|---:|---:|",
                  f"| baseline | {n} | " + " | ".join(_mean_text([b.wer(t) for b in baselines[:n]])
                                                      for t in TEST_SETS) + " | - | - | - |",
                  f"| the method, from scratch | {n} | " + " | ".join(
                      _mean_text([m.wer(t) for m in scratch]) for t in TEST_SETS)
                  + f" | {' / '.join(_iv(iv[t]) for t in TEST_SETS)} | "
                  f"{_iv(iv['first token'], True)} | {_iv(iv['symbol delay'], True)} |"]
        verdicts.append(_verdict("The method (from scratch)", "the baseline", iv))
    if verdicts:
        lines += ["", "What the intervals support:", ""] + verdicts
    curves = {"teacher": read_curve(study_dir / "teacher", "dev-clean", None, None)}
    for label, folder in (("baseline", "baseline-seed1"), ("control", "control-seed1"),
                          ("method stage 1", "ft1-teacher-seed1"),
                          ("method stage 2", "ft2-teacher-seed1"),
                          ("from scratch stage 1", "scratch1-seed1"),
                          ("from scratch stage 2", "scratch2-seed1")):
        if (study_dir / folder).is_dir():
            curves[label] = read_curve(study_dir / folder, "dev-clean", chunk, left)
    if plot_learning_curves(curves, Path("learning-curves.png"), "dev-clean"):
        lines += ["", "Learning curves (first seed; students continue from the updates of the "
                  "model they started from):", "", "![learning curves](learning-curves.png)"]
    run_time = run_time_lines(study_runs(study_dir))
    if run_time:
        lines += [""] + run_time
    commands = []
    for path in sorted((study_dir / "commands").glob("*.txt")):
        stage_commands = [c for c in path.read_text().splitlines() if c.strip()]
        if stage_commands:
            commands += [f"# study.sh stage {int(path.stem)}"] + stage_commands
    if commands:
        lines += ["", "The study's commands (`study/commands/`; every training runs under "
                  "`local/train_until_converged.py`, which logs each epoch's training and "
                  "dev-clean decode):", "", "```bash"] + commands + ["```"]
    return lines


def with_study_section(markdown: str, section: Sequence[str]) -> str:
    """``markdown`` (a RESULTS.md) with its study section replaced by ``section`` (lines as
    study_section gives them), or, where it has none, inserted where write_results.py puts
    it; every other line stays as it was. An empty ``section`` removes the old one."""
    ends_with_newline = markdown.endswith("\n")
    lines = (markdown[:-1] if ends_with_newline else markdown).split("\n")
    if STUDY_HEADING in lines:
        heading = start = lines.index(STUDY_HEADING)
        if start > 0 and lines[start - 1] == "":
            start -= 1  # study_section starts with a blank line
        end = next((i for i in range(heading + 1, len(lines))
                    if lines[i].startswith("## ")), len(lines))
        if end < len(lines):
            end -= 1  # the blank line before the next heading stays with it
    else:
        start = end = next((i - 1 for i, line in enumerate(lines)
                            if line in _SECTIONS_AFTER_STUDY and i > 0 and lines[i - 1] == ""),
                           len(lines))
    head, tail = lines[:start], lines[end:]
    if not tail:
        while head and head[-1] == "":
            head.pop()  # section starts with its own blank line
    return "\n".join(head + list(section) + tail) + ("\n" if ends_with_newline else "")
