"""Per-layer comparison of LiteRT with edgec's reference, each layer on LiteRT's own inputs.

`layer_differences` runs the .tflite once in LiteRT's reference kernels keeping every tensor,
then evaluates each IR node's reference facet on the tensors LiteRT fed that operator and
counts the outputs that differ. A difference therefore belongs to that layer's arithmetic
alone (not to an earlier layer's), which is how docs/tflite.md attributes LiteRT's int8
differences to requantisation rounding.
"""

from __future__ import annotations

import numpy as np

from edgec.codegen.tflite.backend import MODEL_FILE
from edgec.codegen.tflite.lower import TO_NHWC
from edgec.codegen.tflite.runner import _feeds_in_file_order, quantize_input
from edgec.detmath import deterministic_math
from edgec.interp import reference_kernel


def layer_differences(result, feeds: dict[str, np.ndarray]) -> list[dict]:
    """For every IR node whose inputs and output are tensors of the file (same name and
    shape): {"node", "op", "differing", "size", "max_abs"} of its reference output against
    LiteRT's, both computed from LiteRT's input tensors."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    data = result.files[MODEL_FILE]
    g = result.graph
    in_names = list(g.meta.get("input_names") or [v.name for v in g.inputs])
    interp = Interpreter(model_content=data, num_threads=1,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                         experimental_preserve_all_tensors=True)
    interp.allocate_tensors()
    for detail, arr in zip(interp.get_input_details(),
                           _feeds_in_file_order(data, feeds, in_names)):
        interp.set_tensor(detail["index"], quantize_input(arr, detail["dtype"],
                                                          *detail["quantization"]))
    interp.invoke()
    index = {d["name"]: d["index"] for d in interp.get_tensor_details()}
    reordered: set[str] = set()  # values whose file tensor holds another element order
    for node in g.nodes:  # folded Transposes (lower.py): the file has no tensor for them
        if node.op == "Transpose" and node.outputs[0].name not in index:
            if list(node.attrs.get("perm") or []) == TO_NHWC and node.inputs[0].name in index:
                index[node.outputs[0].name] = index[node.inputs[0].name]  # same data, NHWC
            else:  # a flatten head: the next view's output is in NHWC order
                reordered.update(v.name for u in node.outputs[0].users for v in u.outputs)
    rows = []
    for node in g.nodes:
        outs = [v for v in node.outputs if v is not None]
        ins = [v for v in node.inputs if v is not None and not v.is_const]
        if len(outs) != 1 or not ins or any(v.name not in index for v in ins + outs) or \
                any(v.name in reordered for v in ins + outs):
            continue
        args, ok = [], True
        for v in node.inputs:
            if v is None or v.is_const:
                args.append(None if v is None else v.data)
                continue
            arr = interp.get_tensor(index[v.name])
            ok = ok and arr.shape == v.shape
            args.append(arr)
        got = interp.get_tensor(index[outs[0].name])
        if not ok or got.shape != outs[0].shape:
            continue
        with deterministic_math():
            want = np.asarray(reference_kernel(node, args)[0]).astype(got.dtype)
        diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
        rows.append({"node": node.name, "op": node.op, "differing": int(np.count_nonzero(diff)),
                     "size": int(got.size), "max_abs": float(diff.max()) if diff.size else 0.0})
    return rows


def per_layer_report(model_path, options, inputs_path: str | None = None, seed: int = 0
                     ) -> tuple[str, bool]:
    """`edgec verify -t tflite-* --per-layer`: compile, run in LiteRT, and a table of every
    layer against edgec's reference on LiteRT's inputs; (text, every layer exact)."""
    from edgec.compiler import compile_model
    from edgec.workbench.compare import load_inputs, random_inputs, split_batches

    result = compile_model(model_path, options)
    g = result.source_graph
    feeds = load_inputs(inputs_path, g) if inputs_path else random_inputs(g, seed)
    rows = layer_differences(result, split_batches(g, feeds)[0])
    width = max([len(r["node"]) for r in rows] + [4])
    lines = [f"edgec verify --per-layer: {result.target.name} in LiteRT (reference kernels), "
             "each layer on LiteRT's own inputs against edgec's reference",
             f"  {'node':{width}s}  {'op':20s}  {'differing':>14s}  max abs"]
    ok = True
    for r in rows:
        exact = r["differing"] == 0
        tolerated = r["op"] == "Softmax" and r["max_abs"] <= 1e-6  # float island rounding
        ok = ok and (exact or tolerated)
        lines.append(f"  {r['node']:{width}s}  {r['op']:20s}  "
                     f"{r['differing']:>6d}/{r['size']:<7d}  {r['max_abs']:.3g}")
    lines.append(f"edgec verify: {'PASS' if ok else 'FAIL'} (docs/tflite.md: TFLite rounds "
                 "requantisation twice, edgec once)")
    return "\n".join(lines), ok
