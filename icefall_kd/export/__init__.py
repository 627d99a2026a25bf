"""Export of trained transducers for deployment.

- :mod:`~icefall_kd.export.wrappers`: the encoder, decoder and joiner with sherpa-onnx's
  interfaces (state layout, projected outputs), shared by TorchScript and ONNX export;
- :mod:`~icefall_kd.export.torchscript`: TorchScript files and their check against eager;
- :mod:`~icefall_kd.export.contract`: what sherpa-onnx requires of the ONNX files, checked
  before anything is written;
- :mod:`~icefall_kd.export.onnx_export`: ONNX files (fp32 and int8) and ``tokens.txt``;
- :mod:`~icefall_kd.export.onnx_parity`: onnxruntime against PyTorch over chunks;
- :mod:`~icefall_kd.export.sherpa_runtime`: decoding in sherpa-onnx, in a child process;
- :mod:`~icefall_kd.export.sherpa_parity`: sherpa-onnx results against PyTorch search.
"""
