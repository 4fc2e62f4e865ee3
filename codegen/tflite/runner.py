"""Run an edgec .tflite in LiteRT's interpreter and in the tflite-micro Python interpreter.

Inputs are given as for the ONNX model (by public name, ONNX layout); an input the file
takes channels-last (metadata `edgec_info.input_permutations`) is transposed first.

LiteRT runs with its *reference* kernels (OpResolverType.BUILTIN_REF, no XNNPACK delegate,
one thread): they define TFLite's integer arithmetic; the optimised builtin kernels and
XNNPACK (whose int8 path requantises in float) may round differently per CPU.
"""

from __future__ import annotations

import numpy as np

from edgec.codegen.tflite.backend import MODEL_FILE, input_layout
from edgec.codegen.tflite.flatbuf import read_model
from edgec.errors import TargetError, ToolchainError

RUNTIMES = ("litert", "tflm")


def _outputs_in_onnx_layout(model_bytes: bytes, outs: dict[str, np.ndarray]
                            ) -> dict[str, np.ndarray]:
    perms = input_layout(read_model(model_bytes), "output_permutations")
    return {name: arr.transpose(perms[name]) if name in perms else arr
            for name, arr in outs.items()}


def _feeds_in_file_order(model_bytes: bytes, feeds: dict[str, np.ndarray],
                         in_names: list[str]) -> list[np.ndarray]:
    perms = input_layout(read_model(model_bytes))
    out = []
    for name in in_names:
        arr = np.asarray(feeds[name])
        if name in perms:
            arr = arr.transpose(perms[name])
        out.append(np.array(arr, order="C"))  # ascontiguousarray makes a scalar 1-D
    return out


def quantize_input(arr: np.ndarray, dtype, scale: float, zero_point: int) -> np.ndarray:
    """A float input for an int8 file input: ONNX QuantizeLinear (round half to even in
    float32, saturate), as edgec's graph would have done inside the model."""
    if np.dtype(dtype) != np.int8 or arr.dtype == np.int8 or not scale:
        return arr.astype(dtype)  # not a quantised int8 input (scale 0: plain integers)
    q = np.rint(arr.astype(np.float32) / np.float32(scale)).astype(np.int64) + int(zero_point)
    return np.clip(q, -128, 127).astype(np.int8)


def dequantize_output(arr: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """An int8 file output as the float the ONNX model returns: (q - zp) * scale in float32."""
    return (arr.astype(np.int64) - int(zero_point)).astype(np.float32) * np.float32(scale)


def run_litert(model_bytes: bytes, feeds: dict[str, np.ndarray], in_names: list[str],
               out_names: list[str], float_outputs: bool = True) -> dict[str, np.ndarray]:
    """Outputs (by public name) of the model on one sample in LiteRT's reference kernels;
    int8 file I/O is quantised / dequantised here (`float_outputs=False` keeps int8)."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        raise TargetError("running .tflite files needs LiteRT: pip install ai-edge-litert") \
            from None
    try:
        interp = Interpreter(model_content=model_bytes, num_threads=1,
                             experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        interp.allocate_tensors()
        for detail, arr in zip(interp.get_input_details(),
                               _feeds_in_file_order(model_bytes, feeds, in_names)):
            interp.set_tensor(detail["index"], quantize_input(arr, detail["dtype"],
                                                              *detail["quantization"]))
        interp.invoke()
        outs = [interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()]
        if float_outputs:
            outs = [dequantize_output(o, *d["quantization"])
                    if o.dtype == np.int8 and d["quantization"][0] else o
                    for o, d in zip(outs, interp.get_output_details())]
    except (RuntimeError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ToolchainError(f"LiteRT cannot run the generated {MODEL_FILE}: {first}") from None
    return _outputs_in_onnx_layout(model_bytes, dict(zip(out_names, outs)))


def tflm_available() -> bool:
    """True when the tflite-micro Python interpreter is installed."""
    try:
        from tflite_micro.python.tflite_micro import runtime  # noqa: F401
    except ImportError:
        return False
    return True


def run_tflm(model_bytes: bytes, feeds: dict[str, np.ndarray], in_names: list[str],
             out_names: list[str], float_outputs: bool = True, arena_size: int | None = None
             ) -> dict[str, np.ndarray]:
    """Outputs (by public name) of the model on one sample in tflite-micro's interpreter."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        raise TargetError("running .tflite files in TFLite Micro needs: pip install "
                          "tflite-micro") from None
    kwargs = {} if arena_size is None else {"arena_size": arena_size}
    try:
        interp = runtime.Interpreter.from_bytes(bytes(model_bytes), **kwargs)
        for i, arr in enumerate(_feeds_in_file_order(model_bytes, feeds, in_names)):
            d = interp.get_input_details(i)
            qp = d["quantization_parameters"]
            scale, zp = (qp["scales"][0], qp["zero_points"][0]) if len(qp["scales"]) else (1, 0)
            interp.set_input(quantize_input(arr, d["dtype"], scale, zp), i)
        interp.invoke()
        outs = []
        for i in range(len(out_names)):
            out = np.array(interp.get_output(i))
            qp = interp.get_output_details(i)["quantization_parameters"]
            if float_outputs and out.dtype == np.int8 and len(qp["scales"]) and qp["scales"][0]:
                out = dequantize_output(out, qp["scales"][0], qp["zero_points"][0])
            outs.append(out)
    except (RuntimeError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ToolchainError(f"tflite-micro cannot run the generated {MODEL_FILE}: "
                             f"{first}") from None
    return _outputs_in_onnx_layout(model_bytes, dict(zip(out_names, outs)))


def run_compiled(result, feeds_list: list[dict[str, np.ndarray]], runtime: str = "litert"
                 ) -> list[dict[str, np.ndarray]]:
    """Run a TFLite CompileResult on each sample (the verify hook): outputs by public name."""
    g = result.graph
    in_names = list(g.meta.get("input_names") or [v.name for v in g.inputs])
    out_names = list(g.meta.get("output_names") or [v.name for v in g.outputs])
    run = run_litert if runtime == "litert" else run_tflm
    data = result.files[MODEL_FILE]
    return [run(data, feeds, in_names, out_names) for feeds in feeds_list]
