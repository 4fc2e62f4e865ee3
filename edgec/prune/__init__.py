"""Structured channel pruning on the IR: dependency groups, criteria, a smaller ONNX model and
label-free recovery (docs/pruning.md).

`prune_model_file` is the library entry point; it is imported on first use so that the
command line (which imports edgec.prune.cli) stays light."""


def __getattr__(name: str):
    if name in ("prune_model_file", "sensitivity", "PruneResult"):
        from edgec.prune import driver  # on use: the CLI imports edgec.prune.cli only

        return getattr(driver, name)
    raise AttributeError(f"module 'edgec.prune' has no attribute '{name}'")
