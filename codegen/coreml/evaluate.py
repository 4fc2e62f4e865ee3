"""A numpy evaluator of the MIL ops edgec's CoreML programs contain (Linux has no CoreML).

`evaluate(prog, feeds)` runs function `main` of a MIL Program op by op, in program order.
It is meant for the program as written into the `.mlpackage` (`load_package` reads it back
through coremltools' milproto loader), i.e. after coremltools' MIL pass pipeline: the casts
that fp16 compute precision inserts, `constexpr_affine_dequantize` of int8 weights and any
op the passes fused are all evaluated as they stand.

Precision: every op computes in float32 (float64 for reductions where numpy chooses) from
its inputs and rounds its result to the dtype MIL declares for the output, so a program
that computes in fp16 sees fp16 rounding after every op, as the Neural Engine stores fp16
tensors between layers. What it cannot model is the accumulation order and width inside a
device kernel; docs/coreml.md says what that leaves to a Mac.

The semantics follow coremltools' op documentation (coremltools.converters.mil.mil.ops.defs),
written here independently of edgec's own op references. An op type not in EVALUATORS is an
error naming it: a new lowering needs its evaluator before `edgec verify` can check it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgec.codegen.coreml import evaluate_nn, evaluate_ops  # noqa: F401 (register kernels)
from edgec.codegen.coreml._ct import coremltools, quiet
from edgec.codegen.coreml.mil_registry import EVALUATORS


def _np_dtype(var):
    from coremltools.converters.mil.mil import types

    return np.dtype(types.nptype_from_builtin(var.dtype))


def evaluate(prog, feeds: dict[str, np.ndarray], function: str = "main"
             ) -> dict[str, np.ndarray]:
    """Outputs of `function` of MIL Program `prog` on `feeds` (by input name), by name."""
    func = prog.functions[function]
    env: dict[str, np.ndarray] = {}
    for name, var in func.inputs.items():
        env[var.name] = np.asarray(feeds[name]).astype(_np_dtype(var))

    def value(var):
        if isinstance(var, (list, tuple)):
            return [value(v) for v in var]
        if var.name in env:
            return env[var.name]
        if var.val is None:
            raise ValueError(f"MIL value {var.name} is read before it is computed")
        return np.asarray(var.val)

    for op in func.operations:
        if op.op_type == "const":
            env[op.outputs[0].name] = np.asarray(op.outputs[0].val)
            continue
        fn = EVALUATORS.get(op.op_type)
        if fn is None:
            raise NotImplementedError(f"no numpy evaluator for MIL op '{op.op_type}' "
                                      f"({op.name})")

        def get(param, default=None, _op=op):
            var = _op.inputs.get(param)
            return default if var is None else value(var)

        with np.errstate(all="ignore"):
            results = fn(get, op)
        results = results if isinstance(results, list) else [results]
        for var, arr in zip(op.outputs, results):  # classify: a label and a probability list
            env[var.name] = arr if op.op_type == "classify" else \
                np.asarray(arr).astype(_np_dtype(var))
    return {var.name: env[var.name] for var in func.outputs}


def load_package(path: str | Path):
    """The MIL Program stored in an `.mlpackage` (weights read from its weight file)."""
    ct = coremltools()
    from coremltools.converters.mil.frontend.milproto.load import load

    with quiet():
        model = ct.models.MLModel(str(path), skip_model_load=True)
        spec = model.get_spec()
        return load(spec, spec.specificationVersion, file_weights_dir=model.weights_dir)


def load_spec(path: str | Path):
    """The spec of a written model (.mlpackage or .mlmodel), loaded without CoreML."""
    ct = coremltools()
    with quiet():
        return ct.models.MLModel(str(path), skip_model_load=True).get_spec()
