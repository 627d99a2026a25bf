"""Two-stage knowledge distillation from a full-context teacher into a streaming student:
hidden-layer MSE, then KL against a power-transformed, adaptively smoothed teacher."""
