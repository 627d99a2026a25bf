"""run.sh --profile tiny end to end: teacher, streaming baseline, decoding, alignment,
chunk-wise recognition, exported teacher targets, both distillation stages beside the
continued baseline, the students' decoding, RESULTS.md with the distillation table and plots."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest
import torch

from icefall_kd.data.vocabulary import ONNX_METADATA_KEY, Vocabulary, vocabulary_of_lang_dir
from icefall_kd.training.trainer import cpu_has_native_bf16


def test_run_sh_tiny_profile_writes_results(prepared_tiny):
    env = dict(os.environ, ICEFALL_KD_SKIP_INSTALL="1",
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    result = subprocess.run(["bash", "run.sh", "--profile", "tiny", "--ablations", "true",
                             "--seeds", "2", "--zipformer", "true"], cwd=prepared_tiny, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = (prepared_tiny / "RESULTS.md").read_text()
    wer_section = results.split("## WER")[1].split("**The streaming gap**")[0]
    rows = [l for l in wer_section.splitlines() if l.startswith("| teacher") or l.startswith("| streaming")]
    # 3 decoding settings per model, plus 2 chunk-wise ones, each with three numeric WERs;
    # and the baseline's chunk-size sweep (80 and 320 ms) on the two test sets.
    # Stage 9 also recognises the baseline chunk-wise from audio at both sweep chunks.
    sweep = [r for r in rows if "simulated streaming" in r and ("chunk 80 ms" in r or "chunk 320 ms" in r)]
    assert len(rows) == 12 and len(sweep) == 2, results
    for row in rows:
        assert len(re.findall(r"\| \d+\.\d\d ", row + " ")) == (2 if row in sweep else 3), row
    assert "simulated streaming, chunk 160 ms" in results
    assert "chunk-wise from audio, chunk 160 ms" in results
    assert "## Chunk-wise recognition vs simulated streaming" in results
    assert "## Latency" in results and "## Teacher forced alignment" in results
    assert "./transducer_teacher/train.py --exp-dir transducer_teacher/exp" in results
    assert "--parts test-clean\\ test-other" in results  # logged commands stay copy-pasteable
    assert "tokens per 40 ms frame" in results
    for exp in ("transducer_teacher/exp", "transducer_streaming/exp",
                "transducer_streaming/exp-continued"):
        assert (prepared_tiny / exp / "epoch-2.pt").is_file()
    for exp in ("kd_stage1_hidden/exp", "kd_stage2_output/exp"):
        assert (prepared_tiny / exp / "epoch-1.pt").is_file()
    assert (prepared_tiny / "data/teacher_targets/librispeech_cuts_train-clean-100.jsonl.gz").is_file()
    table = results.split("## Distillation")[1].split("\n## ")[0]
    rows = [l for l in table.splitlines() if l.startswith("| ") and not l.startswith("| model")]
    names = [r.split(" | ")[0][2:] for r in rows]
    assert names == ["teacher (full context)", "streaming baseline",
                     "baseline trained on (no teacher, same updates as stages 1+2)",
                     "stage 1 only (hidden MSE)", "stage 2 only, fixed temperature",
                     "one stage: MSE + KL together", "two stages, fixed temperature",
                     "two stages, adaptive power transform (the method)"], names
    seeds = [r.split(" | ")[1] for r in rows]
    assert seeds == ["1", "2", "1", "1", "1", "1", "1", "2"], seeds
    assert re.search(r"- two stages, adaptive power transform \(the method\), WER minus its own "
                     r"seed's baseline, seed by seed: test-clean [+-]\d+\.\d\d, [+-]\d+\.\d\d "
                     r"\(better on \d of 2\)", table), table
    for row in rows:
        assert len(re.findall(r"\| \d+\.\d\d ", row + " ")) == 4, row  # greedy and beam WERs
    assert (prepared_tiny / "wer-vs-chunk.png").stat().st_size > 1000
    assert "](wer-vs-chunk.png)" in results
    # The latency plot needs a model that emits tokens (tiny models may emit none).
    emits = any(r.rstrip(" |").split(" | ")[-2] != "-" for r in rows)  # first-token column
    assert ("](wer-vs-latency.png)" in results) == emits, results
    if emits:
        assert (prepared_tiny / "wer-vs-latency.png").stat().st_size > 1000
    assert "./kd_stage2_output/train.py --exp-dir kd_stage2_output/exp" in results
    assert "--teacher-targets exported" in results
    assert "## Run time" in results and "| stage 6: distillation stage 1 |" in results
    sherpa = results.split("## sherpa-onnx")[1].split("## Run time")[0]
    assert sherpa.count("| kd_stage2_output/exp | fp32 |") == 2, sherpa  # test-clean, test-other
    assert sherpa.count("| transducer_teacher/exp | int8 |") == 2, sherpa
    # Every model is bound to the vocabulary it was trained with (issue 18): checkpoints
    # record it, the exported encoder carries it in its metadata.
    lang = vocabulary_of_lang_dir(prepared_tiny / "data" / "lang_bpe_200")
    for exp in ("transducer_teacher/exp", "kd_stage2_output/exp"):
        saved = torch.load(prepared_tiny / exp / "epoch-1.pt", weights_only=False)["vocabulary"]
        assert Vocabulary.from_dict(saved).same_as(lang), exp
    encoders = sorted((prepared_tiny / "kd_stage2_output" / "exp").glob("encoder-*.onnx"))
    assert encoders
    for encoder in encoders:
        metadata = {p.key: p.value for p in onnx.load(str(encoder)).metadata_props}
        assert metadata[ONNX_METADATA_KEY] == lang.to_metadata(), encoder
    # --zipformer true (issue 19): the Zipformer teacher, baseline, control and method,
    # decoded, beside the Conformer; the method exported to sherpa-onnx's zipformer2 contract.
    zipformer = results.split("## Zipformer")[1].split("\n## ")[0]
    table = zipformer.split("\n\n")[2].splitlines()  # the encoder table, header first
    header = [c.strip() for c in table[0].strip("|").split("|")]
    wer_columns = [i for i, c in enumerate(header) if c.startswith(("greedy test", "beam test"))]
    assert len(wer_columns) == 4, header
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table[2:]]
    assert [r[0] for r in rows] == [
        "Conformer teacher (full context)", "Conformer streaming baseline",
        "Zipformer teacher (full context)", "Zipformer streaming baseline"], zipformer
    for row in rows:  # every model decoded with greedy and beam search on both test sets
        assert all(re.fullmatch(r"\d+\.\d\d", row[i]) for i in wer_columns), row
    # --precision auto: bf16 for the Conformer where the CPU has it, fp32 for the Zipformer.
    precision = header.index("precision")
    conformer = "bf16" if cpu_has_native_bf16() else "fp32"
    assert [r[precision] for r in rows] == [conformer, conformer, "fp32", "fp32"], rows
    optimizer = header.index("optimiser")  # read from the checkpoints: run.sh's choices
    assert [r[optimizer] for r in rows] == ["AdamW", "AdamW", "ScaledAdam", "ScaledAdam"], rows
    # At the Conformer's training time: which Zipformer epoch that is depends on this run's
    # speed, so each model has either its own row (decoded in stage 9) or the sentence
    # saying that its last epoch is the one. Latency is "-" for the full-context teacher and
    # for a model that emits nothing.
    for name in ("Zipformer teacher (full context)", "Zipformer streaming baseline"):
        row = re.search(rf"\| {re.escape(name)}, epoch 1 of 2 \| [\d.]+ \| [\d.]+ \| "
                        r"\d+\.\d\d \| \d+\.\d\d \| (\d+|-) \| (-?\d+|-) \|", zipformer)
        assert row or f"{name}: its last epoch (2) is already" in zipformer, zipformer
    assert "| Zipformer, two stages, adaptive power transform (the method) | 1 |" in zipformer
    for role in ("teacher", "streaming"):  # run.sh's --zipformer-optimizer default
        state = torch.load(prepared_tiny / f"transducer_{role}/exp-zipformer/epoch-2.pt",
                           map_location="cpu", weights_only=False)
        assert state["optimizer_name"] == "scaled-adam", role
    assert sherpa.count("| kd_stage2_output/exp-zipformer | fp32 |") == 2, sherpa
    assert sherpa.count("| transducer_teacher/exp-zipformer | fp32 |") == 2, sherpa
    encoder = sorted((prepared_tiny / "kd_stage2_output" / "exp-zipformer").glob("encoder-*.onnx"))[0]
    metadata = {p.key: p.value for p in onnx.load(str(encoder)).metadata_props}
    assert metadata["model_type"] == "zipformer2", metadata


def test_optimizer_study_tiny_compares_on_dev_clean(prepared_tiny):
    """optimizer_study.sh --profile tiny: a ScaledAdam arm beside the AdamW one."""
    env = dict(os.environ, ICEFALL_KD_SKIP_INSTALL="1",
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    bad = subprocess.run(["bash", "optimizer_study.sh", "--profile", "tiny", "--lrs", "fast"],
                         cwd=prepared_tiny, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "--lrs: 'fast' is not a positive number" in bad.stderr
    result = subprocess.run(["bash", "optimizer_study.sh", "--profile", "tiny", "--lrs", "0.045"],
                            cwd=prepared_tiny, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = (prepared_tiny / "RESULTS-optimizer.md").read_text()
    rows = [line for line in report.splitlines()
            if line.startswith("| ") and not line.startswith("| optimiser")]
    assert [r.split(" | ")[0] for r in rows] == ["| AdamW, peak lr 0.003",
                                                "| ScaledAdam, peak lr 0.045"], report
    assert re.fullmatch(r"\| AdamW, peak lr 0.003 \| \d+\.\d\d \| \d+\.\d\d \| \d+ \| - \|", rows[0])
    assert re.fullmatch(r"\| ScaledAdam, peak lr 0\.045 \| \d+\.\d\d \| \d+\.\d\d \| \d+ \| "
                        r"[+-]\d+\.\d% \[[+-]\d+\.\d, [+-]\d+\.\d\] \|", rows[1]), rows[1]
    assert "--optimizer scaled-adam --base-lr 0.045" in report  # its commands are listed
    assert (prepared_tiny / "optimizer-curves.png").stat().st_size > 1000
    # The option reached the trainer: the arm's checkpoints say which optimiser made them.
    for exp, name in (("optimizer/scaled-adam-lr0.045", "scaled-adam"),
                      ("optimizer/adamw", "adamw")):
        state = torch.load(prepared_tiny / exp / "epoch-2.pt", map_location="cpu", weights_only=False)
        assert state["optimizer_name"] == name, exp
    # --encoder conformer: the Conformer teacher in folders and a report of its own.
    bad = subprocess.run(["bash", "optimizer_study.sh", "--profile", "tiny", "--encoder", "lstm"],
                         cwd=prepared_tiny, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "--encoder takes zipformer or conformer, got 'lstm'" in bad.stderr
    conformer = subprocess.run(["bash", "optimizer_study.sh", "--profile", "tiny", "--encoder",
                                "conformer", "--lrs", "0.045"], cwd=prepared_tiny, env=env,
                               capture_output=True, text=True, timeout=600)
    assert conformer.returncode == 0, conformer.stdout[-3000:] + conformer.stderr[-3000:]
    assert (prepared_tiny / "RESULTS-optimizer.md").read_text() == report  # untouched
    conformer_report = (prepared_tiny / "RESULTS-optimizer-conformer.md").read_text()
    assert conformer_report.startswith("# Conformer teacher: AdamW or ScaledAdam")
    assert "--exp-dir optimizer/conformer-scaled-adam-lr0.045 --model-preset tiny" in conformer_report
    assert (prepared_tiny / "optimizer-conformer-curves.png").stat().st_size > 1000
    for exp, name in (("optimizer/conformer-scaled-adam-lr0.045", "scaled-adam"),
                      ("optimizer/conformer-adamw", "adamw")):
        state = torch.load(prepared_tiny / exp / "epoch-2.pt", map_location="cpu", weights_only=False)
        assert state["optimizer_name"] == name, exp
        assert state["model_config"]["encoder_kind"] == "conformer", exp
    # The study leaves run.sh's outputs as they were: RESULTS.md written again after it is
    # the same.
    # (The folder starts with the repository's RESULTS.md, the default profile's.)
    results = prepared_tiny / "RESULTS.md"
    if not results.exists() or "profile=tiny" not in results.read_text():
        pytest.skip("the RESULTS.md check needs test_run_sh_tiny_profile_writes_results first")
    before = results.read_text()
    rewrite = subprocess.run(["bash", "run.sh", "--profile", "tiny", "--zipformer", "true",
                              "--stage", "11"], cwd=prepared_tiny, env=env,
                             capture_output=True, text=True, timeout=300)
    assert rewrite.returncode == 0, rewrite.stdout[-3000:] + rewrite.stderr[-3000:]
    assert (prepared_tiny / "RESULTS.md").read_text() == before


def test_study_tiny_resumes_after_a_kill_and_reports_its_wall_time(prepared_tiny):
    """study.sh --profile tiny: killed from outside during stage 1, then run again to the
    end; RESULTS.md's study section has both designs, the run-time table counts both runs,
    and the optimiser options reached the trainings they are meant for."""
    env = dict(os.environ, ICEFALL_KD_SKIP_INSTALL="1",
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    study = ["bash", "study.sh", "--profile", "tiny", "--seeds", "2", "--max-epochs", "2",
             "--kd-max-epochs", "1", "--hidden-kd-scales", "0.3 1.0", "--output-kd-scales",
             "0.1", "--entropy-floors", "0.5 1.0", "--stage", "1"]
    bad = subprocess.run(study + ["--optimizer", "sgd"], cwd=prepared_tiny, env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "--optimizer takes adamw or scaled-adam, got 'sgd'" in bad.stderr
    assert not list((prepared_tiny / "study" / "run-time").glob("*.tsv"))  # checked first
    killed = subprocess.Popen(study, cwd=prepared_tiny, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while not list((prepared_tiny / "study" / "teacher").glob("checkpoint-*.pt")):
        assert killed.poll() is None and time.time() < deadline, "stage 1 saved no checkpoint"
        time.sleep(1)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    result = subprocess.run(study, cwd=prepared_tiny, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    section = (prepared_tiny / "RESULTS.md").read_text().split("## The distillation study")[1]
    section = section.split("\n## ")[0]
    for title in ("**Fine-tuning design, run.sh's teacher preset.**",
                  "**Fine-tuning design, the stronger teacher.**", "**From-scratch design.**",
                  "What the intervals support:", "![learning curves](learning-curves.png)"):
        assert title in section, title
    assert (prepared_tiny / "learning-curves.png").stat().st_size > 1000
    # Stage 3's search on dev-clean: two stage-1 weights, one stage-2 weight at the method's
    # floor (0.5), then the other floor; the chosen values reached the method's trainings.
    candidates = re.findall(r"^\| stage ([12]) \| ([^|]+) \| 1 \| 1 \| \d+\.\d\d \|$", section, re.M)
    assert [(n, c.strip()) for n, c in candidates] == [
        ("1", "MSE weight 0.3"), ("1", "MSE weight 1.0"),
        ("2", "KL weight 0.1, entropy floor 0.5"), ("2", "KL weight 0.1, entropy floor 1.0")], section
    chosen = dict(line.split("\t") for line in
                  (prepared_tiny / "study" / "selected-kd.tsv").read_text().splitlines())
    assert chosen["hidden_kd_scale"] in ("0.3", "1.0") and chosen["output_kd_scale"] == "0.1"
    assert (f"Chosen: MSE weight {chosen['hidden_kd_scale']}, KL weight 0.1, entropy floor "
            f"{chosen['kd_entropy_floor']}") in section
    for exp, option, value in (("ft1-strong-seed2", "hidden_kd_scale", chosen["hidden_kd_scale"]),
                               ("scratch2-seed1", "kd_entropy_floor", chosen["kd_entropy_floor"])):
        state = torch.load(prepared_tiny / "study" / exp / "epoch-1.pt", map_location="cpu",
                           weights_only=False)
        assert float(state["args"][option]) == float(value), (exp, state["args"].get(option))
    for folder in ("teacher", "teacher-strong", "baseline-seed2", "ft2-strong-seed2",
                   "scratch1-seed1"):  # how each training stopped
        assert re.search(rf"^\| {folder} \| \d+ \| \d+ \| \d+\.\d\d \| (rule|budget \(--max-epochs\)) "
                         r"\| ([+-]\d+\.\d%|-) \|$", section, re.M), folder
    runs = re.findall(r"^\| (\d) \| 1-7 \| [\d-]+ [\d:]+ \| \w+ \| (\d+\.\d) \| ([^|]+) \|$",
                      section, re.M)
    assert [(n, ended.strip()) for n, _, ended in runs] == [
        ("1", "stopped from outside"), ("2", "this run, writing RESULTS.md")], section
    total = re.search(r"Wall time of the study: (\d+\.\d) hours in 2 runs", section)
    assert total, section
    assert ("the teachers and baselines, ScaledAdam at 0.045; the distillation stages, "
            "ScaledAdam at 0.045; the control, ScaledAdam at 0.045; from-scratch stage 1, "
            "ScaledAdam at 0.045." in section), section
    assert ("The distillation stages, the control, from-scratch stage 2: each continues the "
            "training it starts from (`--init-state training`" in section), section
    assert "so the method and its control differ by their loss alone." in section
    # The stronger teacher (small) is wider than the tiny student: stage 1 maps the student's
    # output to the teacher's through a projection.
    assert "hidden KD: projections 64 -> 96" in (
        prepared_tiny / "study" / "ft1-strong-seed1" / "train.log").read_text()
    # Every training uses --optimizer (scaled-adam by default); those that start from another
    # continue its training (--init-state training): their updates count on from its last.
    def checkpoint(exp: str, epoch: int) -> dict:
        return torch.load(prepared_tiny / "study" / exp / f"epoch-{epoch}.pt",
                          map_location="cpu", weights_only=False)

    for exp in ("teacher", "teacher-strong", "baseline-seed2", "scratch1-seed1",
                "ft1-teacher-seed1", "control-seed1", "scratch2-seed1"):
        assert checkpoint(exp, 1)["optimizer_name"] == "scaled-adam", exp
    base_epochs = int((prepared_tiny / "study" / "baseline-epochs").read_text())
    for exp, start in (("ft1-teacher-seed1", ("baseline-seed1", base_epochs)),
                       ("control-seed2", ("baseline-seed2", base_epochs))):
        state = checkpoint(exp, 1)
        assert state["args"]["init_state"] == "training", exp
        assert state["stage_start_batch"] == checkpoint(*start)["batch_idx_train"] > 0, exp
        assert state["epoch_offset"] == start[1], exp
    # Stage 7 without run.sh's outputs (no exp-commands/) replaces only the study section:
    # every line outside it stays as the first write left it (a full write when run.sh's
    # outputs were here, so the section also sits where a full write puts it).
    def outside(text: str):
        head, rest = text.split("\n## The distillation study", 1)
        return head, rest.split("\n## ", 1)[1] if "\n## " in rest else ""

    results = prepared_tiny / "RESULTS.md"
    first = results.read_text()
    commands, aside = prepared_tiny / "exp-commands", prepared_tiny / "exp-commands.aside"
    had_run_sh = commands.is_dir()
    if had_run_sh:
        commands.rename(aside)
    try:
        again = subprocess.run(study[:-1] + ["7"], cwd=prepared_tiny, env=env,
                               capture_output=True, text=True, timeout=300)
    finally:
        if had_run_sh:
            aside.rename(commands)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    second = results.read_text()
    assert "**From-scratch design.**" in second and outside(second) == outside(first)
