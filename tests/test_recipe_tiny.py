"""run.sh --profile tiny end to end: teacher, streaming baseline, decoding, alignment,
chunk-wise recognition, RESULTS.md."""

import os
import re
import subprocess
import sys
from pathlib import Path


def test_run_sh_tiny_profile_writes_results(prepared_tiny):
    env = dict(os.environ, ICEFALL_KD_SKIP_INSTALL="1",
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    result = subprocess.run(["bash", "run.sh", "--profile", "tiny"], cwd=prepared_tiny, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = (prepared_tiny / "RESULTS.md").read_text()
    wer_section = results.split("## WER")[1].split("**The streaming gap**")[0]
    rows = [l for l in wer_section.splitlines() if l.startswith("| teacher") or l.startswith("| streaming")]
    # 3 decoding settings per model, plus 2 chunk-wise ones, each with three numeric WERs.
    assert len(rows) == 8, results
    for row in rows:
        assert len(re.findall(r"\| \d+\.\d\d ", row + " ")) == 3, row
    assert "simulated streaming, chunk 160 ms" in results
    assert "chunk-wise from audio, chunk 160 ms" in results
    assert "## Chunk-wise recognition vs simulated streaming" in results
    assert "## Latency" in results and "## Teacher forced alignment" in results
    assert "./transducer_teacher/train.py --exp-dir transducer_teacher/exp" in results
    assert "--parts test-clean\\ test-other" in results  # logged commands stay copy-pasteable
    assert "tokens per 40 ms frame" in results
    for exp in ("transducer_teacher/exp", "transducer_streaming/exp"):
        assert (prepared_tiny / exp / "epoch-2.pt").is_file()
