"""Structured channel pruning on the IR: dependency groups, criteria, a smaller ONNX model and
label-free recovery (docs/pruning.md)."""
