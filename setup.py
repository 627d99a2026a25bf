from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="icefall_kd",
    version="0.1.0",
    description="Two-stage knowledge distillation from full-context to streaming "
    "transducers, in the k2/icefall/lhotse style",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.15",  # the pinned wheels (requirements.txt) exist for 3.11-3.14
    packages=find_packages(include=["icefall_kd", "icefall_kd.*"]),
    # Exact versions live in requirements.txt (tools/install.sh); here only what
    # the library imports, unpinned except torch, which must never resolve to a CUDA build.
    install_requires=[
        "torch==2.13.0",
        "lhotse",
        "sentencepiece",
        "kaldi-native-fbank",
        "kaldialign",
        "soundfile",
        "lilcom",
        "scipy",
    ],
    license="Apache-2.0",
)
