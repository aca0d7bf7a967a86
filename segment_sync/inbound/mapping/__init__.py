"""The inbound language: JS value semantics, action specs, the mapping evaluator, triggers."""
