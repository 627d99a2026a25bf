"""Transducer models: a Conformer encoder that runs full-context or chunk-wise streaming,
a stateless decoder and a joiner."""
