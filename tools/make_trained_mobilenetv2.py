#!/usr/bin/env python3
"""Convert the trained MobileNetV2 shipped in the npm package nsfwjs@4.4.0 into an ONNX model.

Why: golden/models/mobilenetv2.onnx has random weights, so int8 accuracy figures measured on
it say little. Nothing can be downloaded here but registry packages, and nsfwjs (MIT licence,
Copyright (c) 2019 Infinite Red, Inc.) bundles a trained Keras MobileNetV2 (alpha 1.0,
224x224x3, ImageNet backbone fine-tuned with a 5-class head) in TensorFlow.js "layers" format.
Only its weights are taken, as data; the conversion is written here.

What it does:
  1. `npm pack nsfwjs@4.4.0` in a temporary directory; the tarball's sha512 must equal
     NSFWJS_INTEGRITY (the registry's dist.integrity, recorded here), else it stops.
  2. Extracts dist/models/mobilenet_v2/{model,group1-shard1of1}.min.js (UMD modules exporting
     the model.json object and a base64 weight shard) and loads both with one `node -e`.
  3. Dequantises the weights exactly as TensorFlow.js does (uint8 per tensor:
     float32(q * scale + min)) and writes an ONNX graph (opset 13, NCHW): input `input`
     1x3x224x224 float32 RGB in [0, 1] (pixel / 255), output `output` 1x5 softmax
     probabilities. Keras layers map one to one onto ONNX nodes (ZeroPadding2D -> Pad,
     BatchNormalization -> BatchNormalization, ReLU(6) -> Clip; nothing is folded); Dropout
     is dropped (inference). Names come from the Keras layer names; no timestamps, so two runs
     write byte-identical files.
  4. With --check, validates the file against the original model run by TensorFlow.js in
     Node (`npm install @tensorflow/tfjs@4` in a temporary directory, pure-JS CPU backend):
     3 seeded images (numpy RandomState(0), uniform [0, 1)), max abs difference of the
     probabilities (<= 1e-4) and of the pre-softmax logits (<= 1e-4 of max |logit|).

Usage: python3 tools/make_trained_mobilenetv2.py [--out PATH] [--check]
Needs node and npm on PATH, the npm registry, onnx, numpy (and onnxruntime for --check).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "golden" / "models" / "mobilenetv2_trained.onnx"

PACKAGE = "nsfwjs@4.4.0"
# `npm view nsfwjs@4.4.0 dist.integrity`; the packed tarball must hash to this.
NSFWJS_INTEGRITY = ("sha512-krC1fgeTLXtZwgdpKJ0jm7hqv0gTSRQQRL+FhOaxaJ9Wj92t42BO3csO2odwgTAgZgf2"
                    "RvkwPtp0R8Aa7dc+MA==")
MODEL_MEMBER = "package/dist/models/mobilenet_v2/model.min.js"
SHARD_MEMBER = "package/dist/models/mobilenet_v2/group1-shard1of1.min.js"
LICENCE = "MIT, Copyright (c) 2019 Infinite Red, Inc."
# nsfwjs's class order (index -> label) for the 5 outputs.
LABELS = ("Drawing", "Hentai", "Neutral", "Porn", "Sexy")
TFJS_PACKAGE = "@tensorflow/tfjs@4"

OPSET = 13
IR_VERSION = 8  # what onnxruntime releases of the last years all read
PRODUCER = "edgec tools/make_trained_mobilenetv2.py"
INPUT_NAME = "input"
OUTPUT_NAME = "output"

CHECK_SEED = 0
CHECK_SAMPLES = 3
PROB_TOL = 1e-4
LOGIT_REL_TOL = 1e-4

DOC_STRING = (
    "MobileNetV2 1.0 (224x224) with a 5-class head, trained by Infinite Red for nsfwjs: "
    f"converted from the TensorFlow.js layers model in npm {PACKAGE} ({LICENCE}) by "
    "tools/make_trained_mobilenetv2.py. The package stores every weight uint8-quantised per "
    "tensor; they are dequantised here as TensorFlow.js does. Input 'input': float32 "
    "1x3x224x224, RGB, pixel / 255 in [0, 1] (no mean or std; nsfwjs resizes to 224x224 "
    "bilinearly and divides by 255). Output 'output': 1x5 softmax probabilities over "
    f"{', '.join(LABELS)} (in that order).")


class ConversionError(Exception):
    """The package or the model is not what this tool knows how to convert."""


# ----------------------------------------------------------------------------- fetching
def run(cmd: list[str], cwd: Path, timeout: int, what: str) -> str:
    """Run a command and return its stdout; raise ConversionError with its stderr on failure."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              check=False)
    except FileNotFoundError as e:
        raise ConversionError(f"{what}: {cmd[0]} not found on PATH") from e
    except subprocess.TimeoutExpired as e:
        raise ConversionError(f"{what}: timed out after {timeout} s") from e
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise ConversionError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def sri_sha512(data: bytes) -> str:
    """The Subresource Integrity string (as npm records it) of `data`."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def fetch_package(work: Path) -> Path:
    """`npm pack` nsfwjs into `work` and check its integrity; returns the tarball's path."""
    run(["npm", "pack", PACKAGE, "--silent"], work, 600, f"npm pack {PACKAGE}")
    tarballs = sorted(work.glob("*.tgz"))
    if len(tarballs) != 1:
        raise ConversionError(f"npm pack {PACKAGE}: expected one tarball, found "
                              f"{[t.name for t in tarballs]}")
    got = sri_sha512(tarballs[0].read_bytes())
    if got != NSFWJS_INTEGRITY:
        raise ConversionError(f"{tarballs[0].name}: integrity mismatch: got {got}, expected "
                              f"{NSFWJS_INTEGRITY}; refusing to use it")
    return tarballs[0]


def extract_model_files(tarball: Path, work: Path) -> tuple[Path, Path]:
    """Copy the model and shard modules out of the tarball as model.cjs and shard.cjs (the
    .cjs extension makes Node load them as CommonJS whatever package.json says)."""
    paths = []
    with tarfile.open(tarball, "r:gz") as tf:
        for member, name in ((MODEL_MEMBER, "model.cjs"), (SHARD_MEMBER, "shard.cjs")):
            try:
                f = tf.extractfile(member)
            except KeyError:
                f = None
            if f is None:
                raise ConversionError(f"{tarball.name}: no file {member}")
            path = work / name
            path.write_bytes(f.read())
            paths.append(path)
    return paths[0], paths[1]


NODE_LOAD = """
const topo = require(process.argv[1]);
const shard = require(process.argv[2]);
if (typeof shard !== "string") throw new Error("the weight shard module exports no string");
process.stdout.write(JSON.stringify({modelTopology: topo.modelTopology,
                                     weightsManifest: topo.weightsManifest, shard: shard}));
"""


def load_with_node(model_js: Path, shard_js: Path) -> tuple[dict, list, bytes]:
    """Evaluate the two UMD modules in Node; returns (modelTopology, weightsManifest, shard)."""
    out = run(["node", "-e", NODE_LOAD, str(model_js.resolve()), str(shard_js.resolve())],
              model_js.parent, 300, "node (loading the model modules)")
    data = json.loads(out)
    return data["modelTopology"], data["weightsManifest"], base64.b64decode(data["shard"])


# ----------------------------------------------------------------------------- weights
def dequantise(manifest: list, shard: bytes) -> dict[str, np.ndarray]:
    """Decode the weight shard by the manifest into float32 arrays keyed by Keras weight name
    ("layer/param"). uint8/uint16-quantised weights become float32(q * scale + min), computed
    in float64 first as TensorFlow.js does; unquantised float32 weights are read as they are."""
    if len(manifest) != 1 or len(manifest[0]["paths"]) != 1:
        raise ConversionError("expected one weight group with one shard, got "
                              f"{[g['paths'] for g in manifest]}")
    weights: dict[str, np.ndarray] = {}
    offset = 0
    for spec in manifest[0]["weights"]:
        name, shape = spec["name"], tuple(spec["shape"])
        count = math.prod(shape)
        if spec["dtype"] != "float32":
            raise ConversionError(f"weight {name}: dtype {spec['dtype']} is not supported")
        q = spec.get("quantization")
        if q is None:
            raw = np.frombuffer(shard, "<f4", count, offset)
            values = raw.copy()
            offset += 4 * count
        elif q["dtype"] in ("uint8", "uint16"):
            dtype = np.dtype("u1") if q["dtype"] == "uint8" else np.dtype("<u2")
            raw = np.frombuffer(shard, dtype, count, offset)
            values = (raw.astype(np.float64) * q["scale"] + q["min"]).astype(np.float32)
            offset += dtype.itemsize * count
        else:
            raise ConversionError(f"weight {name}: quantization {q['dtype']} is not supported")
        weights[name] = values.reshape(shape)
    if offset != len(shard):
        raise ConversionError(f"the manifest covers {offset} bytes, the shard has {len(shard)}")
    return weights


# ----------------------------------------------------------------------------- conversion
def same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's 'SAME' padding (before, after) along one axis: the output has
    ceil(size / stride) positions and any odd padding goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class Converter:
    """Builds the ONNX graph layer by layer from a Keras functional model config.

    Tensors carry the Keras layer names (the last one is renamed `output`); shapes are tracked
    in NCHW without the batch dimension, to compute padding and to check Flatten."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.weights = weights
        self.used: set[str] = set()
        self.nodes: list = []
        self.initializers: list = []
        self.init_names: set[str] = set()
        self.tensor: dict[str, str] = {}  # Keras layer name -> ONNX tensor name
        self.shape: dict[str, tuple[int, ...]] = {}  # Keras layer name -> shape (no batch)

    # -- helpers
    def weight(self, layer: str, param: str) -> np.ndarray:
        """The Keras weight `layer/param` (marked as used)."""
        key = f"{layer}/{param}"
        if key not in self.weights:
            raise ConversionError(f"layer {layer}: weight {key} is missing from the manifest")
        self.used.add(key)
        return self.weights[key]

    def const(self, name: str, value: np.ndarray) -> str:
        """Add an initializer once (shared constants reuse it); returns its name."""
        from onnx import numpy_helper

        if name not in self.init_names:
            self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
            self.init_names.add(name)
        return name

    def node(self, op: str, inputs: list[str], output: str, name: str, **attrs) -> str:
        """Append a node with one output; returns the output's name."""
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=name, **attrs))
        return output

    def activation(self, layer: str, act: str, x: str, out: str) -> str:
        """Apply a Keras activation by name after the layer's linear part `x`."""
        if act == "linear":
            return x
        if act == "relu":
            return self.node("Relu", [x], out, f"{layer}_relu")
        if act == "softmax":
            return self.node("Softmax", [x], out, f"{layer}_softmax", axis=-1)
        raise ConversionError(f"layer {layer}: activation {act!r} is not supported")

    # -- layers
    def convert(self, model_config: dict) -> None:
        """Convert every layer of the functional model config, in order."""
        if model_config.get("class_name") != "Model":
            raise ConversionError("expected a functional Model, got "
                                  f"{model_config.get('class_name')}")
        cfg = model_config["config"]
        outputs = cfg["output_layers"]
        if len(cfg["input_layers"]) != 1 or len(outputs) != 1:
            raise ConversionError("expected one input layer and one output layer")
        self.final = outputs[0][0]
        for layer in cfg["layers"]:
            self.convert_layer(layer)
        unused = sorted(set(self.weights) - self.used)
        if unused:
            raise ConversionError(f"weights not used by any layer: {unused}")

    def convert_layer(self, layer: dict) -> None:
        """Convert one Keras layer (dispatch on class_name)."""
        cls, name, cfg = layer["class_name"], layer["name"], layer["config"]
        inputs = []
        if cls != "InputLayer":
            if len(layer["inbound_nodes"]) != 1:
                raise ConversionError(f"layer {name}: shared layers are not supported")
            for src, node_index, tensor_index, *_ in layer["inbound_nodes"][0]:
                if node_index != 0 or tensor_index != 0:
                    raise ConversionError(f"layer {name}: multi-node inputs are not supported")
                inputs.append(src)
        if cfg.get("data_format", "channels_last") != "channels_last":
            raise ConversionError(f"layer {name}: data_format {cfg['data_format']}")
        out = OUTPUT_NAME if name == self.final else name
        handler = getattr(self, f"layer_{cls}", None)
        if handler is None:
            raise ConversionError(f"layer {name}: Keras layer type {cls} is not supported")
        tensor, shape = handler(name, cfg, inputs, out)
        self.tensor[name], self.shape[name] = tensor, shape

    def one_input(self, name: str, inputs: list[str]) -> tuple[str, tuple[int, ...]]:
        """The single input tensor of a layer and its shape."""
        if len(inputs) != 1:
            raise ConversionError(f"layer {name}: expected one input, got {inputs}")
        return self.tensor[inputs[0]], self.shape[inputs[0]]

    def layer_InputLayer(self, name, cfg, inputs, out):
        """The graph input, NHWC in Keras -> `input` NCHW [1, C, H, W]."""
        _, h, w, c = cfg["batch_input_shape"]
        if None in (h, w, c) or cfg.get("dtype", "float32") != "float32":
            raise ConversionError(f"layer {name}: needs a fixed float32 input shape")
        self.input_shape = (c, h, w)
        return INPUT_NAME, (c, h, w)

    def layer_ZeroPadding2D(self, name, cfg, inputs, out):
        """ZeroPadding2D ((top, bottom), (left, right)) -> Pad (constant 0)."""
        x, (c, h, w) = self.one_input(name, inputs)
        (top, bottom), (left, right) = cfg["padding"]
        pads = self.const(f"{name}.pads",
                          np.array([0, 0, top, left, 0, 0, bottom, right], np.int64))
        return (self.node("Pad", [x, pads], out, name, mode="constant"),
                (c, h + top + bottom, w + left + right))

    def conv(self, name, cfg, inputs, out, kernel: np.ndarray, group: int):
        """Shared part of Conv2D and DepthwiseConv2D; `kernel` is already [cout, cin/g, kh, kw]."""
        x, (c, h, w) = self.one_input(name, inputs)
        if kernel.shape[1] * group != c:
            raise ConversionError(f"layer {name}: {c} input channels vs kernel {kernel.shape}")
        kh, kw = cfg["kernel_size"]
        sh, sw = cfg["strides"]
        dh, dw = cfg["dilation_rate"]
        if cfg["padding"] == "valid":
            pt = pb = pl = pr = 0
        elif cfg["padding"] == "same":
            pt, pb = same_pads(h, kh, sh, dh)
            pl, pr = same_pads(w, kw, sw, dw)
        else:
            raise ConversionError(f"layer {name}: padding {cfg['padding']!r}")
        ins = [x, self.const(f"{name}.weight", kernel)]
        if cfg["use_bias"]:
            ins.append(self.const(f"{name}.bias", self.weight(name, "bias")))
        act = cfg.get("activation", "linear")
        conv_out = out if act == "linear" else f"{name}_linear"
        y = self.node("Conv", ins, conv_out, name, kernel_shape=[kh, kw], strides=[sh, sw],
                      pads=[pt, pl, pb, pr], dilations=[dh, dw], group=group)
        oh = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
        ow = (w + pl + pr - (kw - 1) * dw - 1) // sw + 1
        return self.activation(name, act, y, out), (kernel.shape[0], oh, ow)

    def layer_Conv2D(self, name, cfg, inputs, out):
        """Conv2D: kernel [kh, kw, cin, cout] -> Conv weight [cout, cin, kh, kw]."""
        kernel = self.weight(name, "kernel").transpose(3, 2, 0, 1)
        if kernel.shape[0] != cfg["filters"]:
            raise ConversionError(f"layer {name}: kernel shape {kernel.shape} vs filters")
        return self.conv(name, cfg, inputs, out, kernel, 1)

    def layer_DepthwiseConv2D(self, name, cfg, inputs, out):
        """DepthwiseConv2D: kernel [kh, kw, cin, mult] -> Conv group=cin, weight
        [cin * mult, 1, kh, kw] (output channel c * mult + m, as TensorFlow orders them)."""
        k = self.weight(name, "depthwise_kernel")
        kh, kw, cin, mult = k.shape
        kernel = k.reshape(kh, kw, cin * mult, 1).transpose(2, 3, 0, 1)
        return self.conv(name, cfg, inputs, out, kernel, cin)

    def layer_BatchNormalization(self, name, cfg, inputs, out):
        """BatchNormalization (inference) -> ONNX BatchNormalization with the layer's epsilon."""
        x, shape = self.one_input(name, inputs)
        if cfg["axis"] not in (-1, 3, [-1], [3]):
            raise ConversionError(f"layer {name}: BatchNormalization axis {cfg['axis']}")
        mean = self.weight(name, "moving_mean")
        ones, zeros = np.ones_like(mean), np.zeros_like(mean)
        gamma = self.weight(name, "gamma") if cfg.get("scale", True) else ones
        beta = self.weight(name, "beta") if cfg.get("center", True) else zeros
        ins = [x, self.const(f"{name}.scale", gamma), self.const(f"{name}.bias", beta),
               self.const(f"{name}.mean", mean),
               self.const(f"{name}.var", self.weight(name, "moving_variance"))]
        return (self.node("BatchNormalization", ins, out, name, epsilon=float(cfg["epsilon"])),
                shape)

    def layer_ReLU(self, name, cfg, inputs, out):
        """ReLU(max_value=M) -> Clip(0, M) (bounds as scalar initializers); plain -> Relu."""
        x, shape = self.one_input(name, inputs)
        if cfg.get("negative_slope", 0) != 0 or cfg.get("threshold", 0) != 0:
            raise ConversionError(f"layer {name}: ReLU with negative_slope/threshold")
        top = cfg.get("max_value")
        if top is None:
            return self.node("Relu", [x], out, name), shape
        lo = self.const("relu.min", np.array(0.0, np.float32))
        hi = self.const(f"relu.max{float(top):g}", np.array(top, np.float32))
        return self.node("Clip", [x, lo, hi], out, name), shape

    def layer_Add(self, name, cfg, inputs, out):
        """Add of two or more tensors -> a chain of Add nodes."""
        if len(inputs) < 2 or len({self.shape[i] for i in inputs}) != 1:
            raise ConversionError(f"layer {name}: Add needs >= 2 inputs of one shape")
        acc = self.tensor[inputs[0]]
        for i, src in enumerate(inputs[1:], 1):
            last = i == len(inputs) - 1
            acc = self.node("Add", [acc, self.tensor[src]], out if last else f"{name}_{i}",
                            name if last else f"{name}_{i}")
        return acc, self.shape[inputs[0]]

    def layer_AveragePooling2D(self, name, cfg, inputs, out):
        """AveragePooling2D -> GlobalAveragePool when one window covers the whole map
        ('valid'), else AveragePool (TF 'same' excludes the padding: count_include_pad=0)."""
        x, (c, h, w) = self.one_input(name, inputs)
        kh, kw = cfg["pool_size"]
        sh, sw = cfg["strides"] or cfg["pool_size"]
        if cfg["padding"] == "valid" and (kh, kw) == (h, w):
            return self.node("GlobalAveragePool", [x], out, name), (c, 1, 1)
        if cfg["padding"] == "valid":
            pt = pb = pl = pr = 0
        elif cfg["padding"] == "same":
            pt, pb = same_pads(h, kh, sh, 1)
            pl, pr = same_pads(w, kw, sw, 1)
        else:
            raise ConversionError(f"layer {name}: padding {cfg['padding']!r}")
        y = self.node("AveragePool", [x], out, name, kernel_shape=[kh, kw], strides=[sh, sw],
                      pads=[pt, pl, pb, pr], count_include_pad=0)
        return y, (c, (h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1)

    def layer_Flatten(self, name, cfg, inputs, out):
        """Flatten: Keras flattens NHWC order; on a 1x1 map that equals NCHW Flatten, else a
        Transpose to NHWC goes first."""
        x, shape = self.one_input(name, inputs)
        if len(shape) == 3 and shape[1:] != (1, 1):
            x = self.node("Transpose", [x], f"{name}_nhwc", f"{name}_nhwc", perm=[0, 2, 3, 1])
        return self.node("Flatten", [x], out, name, axis=1), (math.prod(shape),)

    def layer_Dense(self, name, cfg, inputs, out):
        """Dense -> Gemm (kernel [in, out] used as B) then its activation."""
        x, shape = self.one_input(name, inputs)
        kernel = self.weight(name, "kernel")
        if len(shape) != 1 or kernel.shape != (shape[0], cfg["units"]):
            raise ConversionError(f"layer {name}: input {shape} vs kernel {kernel.shape}")
        ins = [x, self.const(f"{name}.weight", kernel)]
        if cfg["use_bias"]:
            ins.append(self.const(f"{name}.bias", self.weight(name, "bias")))
        act = cfg.get("activation", "linear")
        y = self.node("Gemm", ins, out if act == "linear" else f"{name}_linear", name)
        return self.activation(name, act, y, out), (cfg["units"],)

    def layer_Dropout(self, name, cfg, inputs, out):
        """Dropout is the identity at inference: no node."""
        if name == self.final:
            raise ConversionError(f"layer {name}: a Dropout cannot be the output")
        return self.one_input(name, inputs)


def build_model(topology: dict, weights: dict[str, np.ndarray]):
    """The ONNX ModelProto of the Keras model `topology` with `weights`."""
    import onnx
    from onnx import helper

    conv = Converter(weights)
    conv.convert(topology["model_config"])
    c, h, w = conv.input_shape
    (units,) = conv.shape[conv.final]
    graph = helper.make_graph(
        conv.nodes, "mobilenetv2_trained",
        [helper.make_tensor_value_info(INPUT_NAME, onnx.TensorProto.FLOAT, [1, c, h, w])],
        [helper.make_tensor_value_info(OUTPUT_NAME, onnx.TensorProto.FLOAT, [1, units])],
        conv.initializers)
    model = helper.make_model(graph, producer_name=PRODUCER,
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    model.doc_string = DOC_STRING
    helper.set_model_props(model, {
        "source": f"npm {PACKAGE}, dist/models/mobilenet_v2 (TensorFlow.js layers model, "
                  f"Keras {topology.get('keras_version', '?')})",
        "source_integrity": NSFWJS_INTEGRITY,
        "license": LICENCE,
        "labels": ",".join(LABELS),
        "preprocessing": "RGB, pixel / 255, NCHW",
    })
    onnx.checker.check_model(model, full_check=True)
    return model


def logits_tensor(model) -> str:
    """Name of the pre-softmax tensor: the input of the Softmax producing `output` (or
    `output` itself when the model ends without a Softmax)."""
    for node in model.graph.node:
        if OUTPUT_NAME in node.output and node.op_type == "Softmax":
            return node.input[0]
    return OUTPUT_NAME


# ----------------------------------------------------------------------------- validation
NODE_TFJS = """
const fs = require("fs");
const tf = require("@tensorflow/tfjs");
(async () => {
  const [modelJs, shardJs, inputPath, count, outPath] = process.argv.slice(1);
  await tf.setBackend("cpu");
  const art = require(modelJs);
  const bytes = Buffer.from(require(shardJs), "base64");
  const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const weightSpecs = [].concat(...art.weightsManifest.map((g) => g.weights));
  const model = await tf.loadLayersModel(
      tf.io.fromMemory({modelTopology: art.modelTopology, weightSpecs, weightData}));
  const last = model.getLayer(model.outputLayers[0].name);
  const activation = last.getConfig().activation;
  if (!["softmax", "linear"].includes(activation)) throw new Error("last activation " + activation);
  // the input of the last Dense, and the model's output, in one pass
  const sub = tf.model({inputs: model.inputs, outputs: [last.input, model.outputs[0]]});
  const raw = new Uint8Array(fs.readFileSync(inputPath));
  const shape = [Number(count)].concat(model.inputs[0].shape.slice(1));
  const x = tf.tensor(new Float32Array(raw.buffer), shape, "float32");
  const [hidden, probs] = sub.predict(x);
  const [kernel, bias] = last.getWeights();
  const logits = tf.add(tf.matMul(hidden, kernel), bias);
  fs.writeFileSync(outPath, JSON.stringify({
    tfjs: tf.version.tfjs, backend: tf.getBackend(), activation,
    probs: Array.from(await probs.data()), logits: Array.from(await logits.data()),
  }));
})().catch((e) => { console.error(e && e.stack ? e.stack : String(e)); process.exit(1); });
"""


def run_tfjs(model_js: Path, shard_js: Path, x_nhwc: np.ndarray, work: Path) -> dict:
    """Install TensorFlow.js into `work` and run the original model on `x_nhwc`; returns
    {'tfjs', 'backend', 'activation', 'probs', 'logits'} (arrays shaped [n, classes])."""
    (work / "package.json").write_text('{"private": true}\n')
    try:
        run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "--no-save",
             TFJS_PACKAGE], work, 900, f"npm install {TFJS_PACKAGE}")
    except ConversionError as e:
        raise ConversionError(f"cannot install TensorFlow.js for --check: {e}") from e
    inp, out = work / "input.f32", work / "tfjs_out.json"
    inp.write_bytes(np.ascontiguousarray(x_nhwc, np.float32).tobytes())
    run(["node", "-e", NODE_TFJS, str(model_js.resolve()), str(shard_js.resolve()), str(inp),
         str(len(x_nhwc)), str(out)], work, 900, "node (TensorFlow.js inference)")
    res = json.loads(out.read_text())
    n = len(x_nhwc)
    res["probs"] = np.array(res["probs"], np.float64).reshape(n, -1)
    res["logits"] = np.array(res["logits"], np.float64).reshape(n, -1)
    return res


def run_onnx(model_bytes: bytes, x_nchw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """onnxruntime on a copy of the model that also outputs the logits; one sample at a time
    (the model has batch 1). Returns (probs, logits), each [n, classes]."""
    import onnx
    import onnxruntime as ort

    model = onnx.load_from_string(model_bytes)
    logits_name = logits_tensor(model)
    if logits_name != OUTPUT_NAME:
        units = model.graph.output[0].type.tensor_type.shape.dim[1].dim_value
        model.graph.output.append(
            onnx.helper.make_tensor_value_info(logits_name, onnx.TensorProto.FLOAT, [1, units]))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    probs, logits = [], []
    for x in x_nchw:
        p, z = sess.run([OUTPUT_NAME, logits_name], {INPUT_NAME: x[None]})
        probs.append(p[0])
        logits.append(z[0])
    return np.array(probs, np.float64), np.array(logits, np.float64)


def check(model_bytes: bytes, model_js: Path, shard_js: Path, work: Path) -> bool:
    """Compare the converted model (onnxruntime) with the original (TensorFlow.js) on seeded
    inputs; prints the figures and returns whether they are within tolerance."""
    rng = np.random.RandomState(CHECK_SEED)
    x_nhwc = rng.uniform(0.0, 1.0, (CHECK_SAMPLES, 224, 224, 3)).astype(np.float32)
    tfjs = run_tfjs(model_js, shard_js, x_nhwc, work)
    probs, logits = run_onnx(model_bytes, x_nhwc.transpose(0, 3, 1, 2).copy())
    d_prob = float(np.max(np.abs(probs - tfjs["probs"])))
    d_logit = float(np.max(np.abs(logits - tfjs["logits"])))
    scale = float(np.max(np.abs(tfjs["logits"])))
    rel = d_logit / scale
    print(f"check: TensorFlow.js {tfjs['tfjs']} ({tfjs['backend']} backend) vs onnxruntime, "
          f"{CHECK_SAMPLES} images (RandomState({CHECK_SEED}) uniform [0, 1))")
    for i in range(CHECK_SAMPLES):
        print(f"check:   image {i}: tfjs probs {np.array2string(tfjs['probs'][i], precision=6)}"
              f"  onnx top-1 {int(np.argmax(probs[i]))} tfjs top-1 "
              f"{int(np.argmax(tfjs['probs'][i]))}")
    print(f"check: max |d prob| = {d_prob:.3e} (limit {PROB_TOL:g})")
    print(f"check: max |d logit| = {d_logit:.3e}, max |logit| = {scale:.4f}, relative "
          f"{rel:.3e} (limit {LOGIT_REL_TOL:g})")
    ok = d_prob <= PROB_TOL and rel <= LOGIT_REL_TOL
    print("check: " + ("OK" if ok else "FAILED: the conversion does not match TensorFlow.js"))
    return ok


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    """Fetch, convert, write and optionally check; returns a process exit code."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="ONNX file to write (default: golden/models/mobilenetv2_trained.onnx)")
    ap.add_argument("--check", action="store_true",
                    help=f"validate against the original model in TensorFlow.js "
                         f"(npm install {TFJS_PACKAGE} in a temporary directory)")
    args = ap.parse_args(argv)
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            print(f"make_trained_mobilenetv2: error: {tool} is not on PATH", file=sys.stderr)
            return 1
    with tempfile.TemporaryDirectory(prefix="edgec-nsfwjs-") as tmp:
        work = Path(tmp)
        try:
            tarball = fetch_package(work)
            print(f"make_trained_mobilenetv2: {tarball.name} integrity OK")
            model_js, shard_js = extract_model_files(tarball, work)
            topology, manifest, shard = load_with_node(model_js, shard_js)
            weights = dequantise(manifest, shard)
            model = build_model(topology, weights)
        except ConversionError as e:
            print(f"make_trained_mobilenetv2: error: {e}", file=sys.stderr)
            return 1
        data = model.SerializeToString()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = args.out.with_name(f".{args.out.name}.{os.getpid()}.tmp")
        tmp_out.write_bytes(data)
        os.replace(tmp_out, args.out)
        params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
        print(f"make_trained_mobilenetv2: wrote {args.out} ({len(data):,} B, {params:,} values "
              f"in initializers, {len(model.graph.node)} nodes) sha256 "
              f"{hashlib.sha256(data).hexdigest()}")
        if args.check:
            check_dir = work / "tfjs"
            check_dir.mkdir()
            try:
                if not check(data, model_js, shard_js, check_dir):
                    return 1
            except ConversionError as e:
                print(f"make_trained_mobilenetv2: error: {e}", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
