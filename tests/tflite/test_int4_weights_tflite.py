"""tflite-int8 with --weight-bits 4: convolution filters (and per-channel fully connected
layers, written as CONV_2D 1x1) are TFLite INT4 tensors (two values per byte, low nibble
first), CONV_2D version 7 as TFLite's op_version table says for an int4 filter; LiteRT runs
the file with the bits of edgec's int8 reference interpreter (and so of its C)."""

from __future__ import annotations

import numpy as np
import pytest

from edgec.compiler import CompileOptions, compile_model
from edgec.interp import run_graph
from edgec.workbench.compare import compare, random_inputs

pytest.importorskip("ai_edge_litert.interpreter")
from ai_edge_litert import schema_py_generated as schema
from edgec.codegen.tflite import builtin_name, read_model
from edgec.codegen.tflite.runner import run_compiled


@pytest.mark.parametrize("name", ["digits_cnn", "resnet8", "dscnn"])
def test_int4_filters_run_bit_exact_in_litert(zoo_dir, name):
    result = compile_model(zoo_dir / f"{name}.onnx",
                           CompileOptions(target="tflite-int8", weight_bits=4))
    model = read_model(result.files["model.tflite"])
    sg = model.subgraphs[0]
    int4_nodes = [n for n in result.graph.nodes if n.attrs.get("weight_bits", 8) == 4]
    filters = []
    for op in sg.operators:
        code = model.operatorCodes[op.opcodeIndex]
        kind = builtin_name(max(code.builtinCode, code.deprecatedBuiltinCode))
        if kind == "CONV_2D":
            t = sg.tensors[op.inputs[1]]
            assert t.type == schema.TensorType.INT4 and code.version == 7
            filters.append(t)
        if kind == "DEPTHWISE_CONV_2D":
            assert sg.tensors[op.inputs[1]].type == schema.TensorType.INT8
    assert len(filters) == len(int4_nodes)
    for t, node in zip(filters, int4_nodes):
        data = np.asarray(model.buffers[t.buffer].data, np.uint8)
        w = node.input(1).data
        assert data.size == -(-w.size // 2)  # two weights per byte
        low = ((data.astype(np.int16) & 15) ^ 8) - 8
        first = np.moveaxis(w, 1, -1).reshape(-1)[0] if w.ndim == 4 else w.reshape(-1)[0]
        assert low[0] == first
    g = result.graph
    out_names = g.meta.get("output_names") or [v.name for v in g.outputs]
    for seed in (0, 1):
        feeds = random_inputs(result.source_graph, seed=seed)
        got = run_compiled(result, [feeds])[0]
        want = run_graph(g, feeds)
        for out_name, v in zip(out_names, g.outputs):
            a, b = np.asarray(got[out_name]), np.asarray(want[out_name]).reshape(
                got[out_name].shape)
            if v.producer is not None and v.producer.op == "DequantizeLinear":
                assert np.array_equal(a, b), (name, seed)
            else:  # a float Softmax after the int8 logits: its own float rounding
                assert compare(out_name, a, b, rtol=1e-5).ok, (name, seed)
