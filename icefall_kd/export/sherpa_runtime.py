"""Decoding with sherpa-onnx's own recognisers, meant to run in a child process.

sherpa-onnx ends the process (``exit(-1)``, failed asserts) instead of raising when a model
breaks its contract, so :func:`run_in_subprocess` runs :func:`decode` in a fresh Python
(``python -m icefall_kd.export.sherpa_runtime request.json result.json``) and turns a
crash into :class:`SherpaRuntimeError` with sherpa-onnx's message. The child imports
neither torch nor the model code, so its timing is sherpa-onnx's alone.

Request (JSON): ``mode`` "online" | "offline"; ``files`` {encoder, decoder, joiner,
tokens}; ``cuts`` a lhotse cut manifest (recordings are read from it, relative paths from
the current folder); ``num_threads``; ``blank_penalty``; ``tail_padding_samples`` (online:
zeros appended so the last chunk is decoded, sherpa-onnx only runs full windows);
``num_streams`` (online streams decoded together).
Result: ``utterances`` [{id, token_ids, timestamps (s)}], ``processing_seconds``,
``audio_seconds`` (without tail padding), ``real_time_factor``, ``num_threads``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from icefall_kd.export.contract import ExportContractError, read_tokens, sherpa_symbol

SAMPLE_RATE = 16000


class SherpaRuntimeError(RuntimeError):
    """sherpa-onnx failed (or ended its process) on these files."""


def _symbol_to_id(tokens: str) -> Dict[str, int]:
    table: Dict[str, int] = {}
    for piece, token_id in read_tokens(Path(tokens)).items():
        symbol = sherpa_symbol(piece)
        if symbol in table:
            raise ExportContractError(f"{tokens}: {piece!r} and another piece look the same in "
                                      "sherpa-onnx's results")
        table[symbol] = token_id
    return table


def _load_audio(cuts_path: str):
    from lhotse import load_manifest

    for cut in load_manifest(cuts_path):
        if cut.sampling_rate != SAMPLE_RATE:
            cut = cut.resample(SAMPLE_RATE)
        yield cut.id, cut.load_audio()[0].astype(np.float32)


def _decode_online(request: dict, utterances) -> List[dict]:
    import sherpa_onnx

    files = request["files"]
    recognizer = sherpa_onnx.OnlineRecognizer.from_transducer(
        tokens=files["tokens"], encoder=files["encoder"], decoder=files["decoder"],
        joiner=files["joiner"], num_threads=request["num_threads"],
        decoding_method="greedy_search", blank_penalty=request.get("blank_penalty", 0.0),
    )
    tail = np.zeros(request["tail_padding_samples"], dtype=np.float32)
    batch_size = request.get("num_streams", 1)
    results = []
    for begin in range(0, len(utterances), batch_size):
        batch = utterances[begin : begin + batch_size]
        streams = []
        for _, audio in batch:
            stream = recognizer.create_stream()
            stream.accept_waveform(SAMPLE_RATE, audio)
            stream.accept_waveform(SAMPLE_RATE, tail)
            stream.input_finished()
            streams.append(stream)
        while True:
            ready = [s for s in streams if recognizer.is_ready(s)]
            if not ready:
                break
            recognizer.decode_streams(ready)
        for (utt_id, _), stream in zip(batch, streams):
            results.append({"id": utt_id, "tokens": list(recognizer.tokens(stream)),
                            "timestamps": list(recognizer.timestamps(stream))})
    return results


def _decode_offline(request: dict, utterances) -> List[dict]:
    import sherpa_onnx

    files = request["files"]
    recognizer = sherpa_onnx.OfflineRecognizer.from_transducer(
        encoder=files["encoder"], decoder=files["decoder"], joiner=files["joiner"],
        tokens=files["tokens"], num_threads=request["num_threads"],
        decoding_method="greedy_search", blank_penalty=request.get("blank_penalty", 0.0),
    )
    results = []
    for utt_id, audio in utterances:
        stream = recognizer.create_stream()
        stream.accept_waveform(SAMPLE_RATE, audio)
        recognizer.decode_stream(stream)
        results.append({"id": utt_id, "tokens": list(stream.result.tokens),
                        "timestamps": list(stream.result.timestamps)})
    return results


def decode(request: dict) -> dict:
    """Decodes every cut of ``request["cuts"]``; see the module docstring."""
    if request["mode"] not in ("online", "offline"):
        raise ValueError(f"mode must be online or offline, not {request['mode']!r}")
    for key in ("encoder", "decoder", "joiner", "tokens"):
        if not Path(request["files"][key]).is_file():
            raise FileNotFoundError(f"{key} file {request['files'][key]} does not exist")
    symbols = _symbol_to_id(request["files"]["tokens"])
    utterances = list(_load_audio(request["cuts"]))
    started = time.perf_counter()
    run = _decode_online if request["mode"] == "online" else _decode_offline
    decoded = run(request, utterances)
    processing = time.perf_counter() - started
    audio_seconds = sum(len(audio) for _, audio in utterances) / SAMPLE_RATE
    for item in decoded:
        unknown = [t for t in item["tokens"] if t not in symbols]
        if unknown:
            raise SherpaRuntimeError(f"{item['id']}: sherpa-onnx returned tokens {unknown} "
                                     "that are not in tokens.txt")
        item["token_ids"] = [symbols[t] for t in item.pop("tokens")]
    return {"utterances": decoded, "processing_seconds": processing,
            "audio_seconds": audio_seconds,
            "real_time_factor": processing / max(audio_seconds, 1e-9),
            "num_threads": request["num_threads"]}


def run_in_subprocess(request: dict, timeout: Optional[float] = None) -> dict:
    """:func:`decode` in a child process; a crash or exit raises :class:`SherpaRuntimeError`
    with the end of the child's output."""
    with tempfile.TemporaryDirectory(prefix="sherpa-") as tmp:
        request_path, result_path = Path(tmp) / "request.json", Path(tmp) / "result.json"
        request_path.write_text(json.dumps(request))
        threads = str(request.get("num_threads", 1))
        env = dict(os.environ, OMP_NUM_THREADS=threads)
        try:
            done = subprocess.run(
                [sys.executable, "-m", "icefall_kd.export.sherpa_runtime", str(request_path),
                 str(result_path)],
                capture_output=True, text=True, timeout=timeout, env=env,
            )
        except subprocess.TimeoutExpired as error:
            raise SherpaRuntimeError(f"sherpa-onnx did not finish in {timeout} s") from error
        if done.returncode != 0 or not result_path.is_file():
            tail = (done.stdout + done.stderr)[-3000:]
            raise SherpaRuntimeError(
                f"sherpa-onnx ({request['mode']}) failed with exit code {done.returncode} on "
                f"{request['files']['encoder']}:\n{tail}"
            )
        return json.loads(result_path.read_text())


def main(argv: Optional[List[str]] = None) -> None:
    request_path, result_path = (argv or sys.argv[1:])[:2]
    result = decode(json.loads(Path(request_path).read_text()))
    Path(result_path).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
