"""run.sh --profile tiny end to end: teacher, streaming baseline, decoding, RESULTS.md."""

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
    rows = [l for l in results.splitlines() if l.startswith("| teacher") or l.startswith("| streaming")]
    # 3 decoding settings per model, each with three numeric WERs.
    assert len(rows) == 6, results
    for row in rows:
        assert len(re.findall(r"\| \d+\.\d\d ", row + " ")) == 3, row
    assert "simulated streaming, chunk 160 ms" in results
    assert "./transducer_teacher/train.py --exp-dir transducer_teacher/exp" in results
    assert "tokens per 40 ms frame" in results
    for exp in ("transducer_teacher/exp", "transducer_streaming/exp"):
        assert (prepared_tiny / exp / "epoch-2.pt").is_file()
