"""icefall-kd: adaptive two-stage knowledge distillation for streaming transducers."""

__version__ = "0.1.0"
