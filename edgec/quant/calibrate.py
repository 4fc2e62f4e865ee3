"""Calibration: run the fp32 graph on representative inputs and collect per-value statistics.

The graph calibrated is the fp32 graph *after* the target's fp32 pipeline (fused epilogues,
channels-last), so the statistics belong to exactly the values the quantize pass rewrites.

Host independence: the statistics decide every int8 scale, so the float activations they
come from are computed the same way on every machine: products through fast_kernels.py
(exact integer-grid products, fixed-order depthwise sums; no torch, no BLAS-order
dependence) and exp/log/tanh through edgec/detmath.py (IEEE-exact operations in a fixed
order, not numpy's SIMD dispatch). The argument is written out in edgec/detmath.py.

Speed: samples are run through the numpy reference interpreter in chunks of up to
`CHUNK` samples at once. A batched copy of the graph is made by scaling every value's leading
axis; whether that is legal (no op mixes samples, no reshape pins the batch) is checked
empirically on the first two samples: the batched graph must reproduce every intermediate
value of two single-sample runs exactly. Otherwise samples run one at a time.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgec.console import quote
from edgec.console.progress import Progress
from edgec.datafiles import as_input_dtype, quote_path, read_arrays
from edgec.detmath import deterministic_math
from edgec.errors import DataError, EdgecError
from edgec.interp import execute
from edgec.ir import Graph
from edgec.ops import get_op
from edgec.ops.epilogue import activation_np
from edgec.ops.int8_scheme import CLAMP_ACTIVATIONS, PRE_ACTIVATION
from edgec.quant.fast_kernels import FAST_KERNELS
from edgec.quant.images import IMAGE_SUFFIXES, ImagePreprocess, load_image_folder
from edgec.quant.observers import DEFAULT_PERCENTILE, METHODS, TensorStats

CHUNK = 25
EPILOGUE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
DEFAULT_RANDOM_SAMPLES = 8
RANDOM_WARNING = ("edgec: warning: no --calib data given; calibrating int8 on seeded random "
                  "inputs (accuracy needs representative data: pass --calib)")


@dataclass
class Calibration:
    """Statistics of every float activation (graph inputs and node outputs) by value name."""

    stats: dict[str, TensorStats]
    method: str = "minmax"
    percentile: float = DEFAULT_PERCENTILE
    samples: int = 0
    source: str = "random"
    seconds: float = 0.0
    batched: bool = False
    meta: dict = field(default_factory=dict)

    def range_of(self, name: str) -> tuple[float, float]:
        """The [lo, hi] range chosen for value `name` by the calibration method."""
        try:
            s = self.stats[name]
        except KeyError:
            raise EdgecError(f"no calibration statistics for value '{name}'") from None
        return s.range_for(self.method, self.percentile)

    def summary(self) -> dict:
        """JSON-ready description for report.json."""
        return {"method": self.method, "samples": self.samples, "source": self.source,
                "seconds": round(self.seconds, 3), "batched": self.batched,
                **({"percentile": self.percentile} if self.method == "percentile" else {})}


# ------------------------------------------------------------------------------ inputs
def input_names(g: Graph) -> list[str]:
    """Public input names of `g` in order."""
    return g.meta.get("input_names") or [v.name for v in g.inputs]


def _dims(shape) -> str:
    return "x".join(map(str, shape)) or "()"


def _split(g: Graph, arrays: dict[str, np.ndarray], where: str) -> list[dict[str, np.ndarray]]:
    names = input_names(g)
    counts = set()
    for name, v in zip(names, g.inputs):
        arr = arrays[name]
        b = v.shape[0] if v.shape else 1
        if tuple(arr.shape) == v.shape:
            counts.add(1)
        elif v.shape and arr.ndim == len(v.shape) and tuple(arr.shape[1:]) == v.shape[1:] \
                and arr.shape[0] % b == 0 and arr.shape[0] > 0:
            counts.add(arr.shape[0] // b)
        elif v.shape and arr.ndim == len(v.shape) - 1 and tuple(arr.shape) == v.shape[1:] \
                and b == 1:
            arrays[name] = arr[None]
            counts.add(1)
        else:
            raise DataError(
                f"{where}: input {quote(name)} has shape {_dims(arr.shape)} but the model "
                f"expects {_dims(v.shape)} (or N of them stacked on axis 0)")
    if len(counts) != 1:
        raise DataError(f"{where}: inputs hold different numbers of samples")
    n = counts.pop()
    samples = []
    for i in range(n):
        sample = {}
        for name, v in zip(names, g.inputs):
            b = v.shape[0] if v.shape else 1
            arr = arrays[name]
            sample[name] = arr if tuple(arr.shape) == v.shape else arr[i * b:(i + 1) * b]
            sample[name] = np.ascontiguousarray(sample[name], dtype=v.dtype.np)
        samples.append(sample)
    return samples


def split_samples(g: Graph, arrays: dict[str, np.ndarray], where: str
                  ) -> list[dict[str, np.ndarray]]:
    """Model-shaped samples from arrays holding one sample or N stacked on axis 0 (each
    input by public name); DataError naming `where` on a missing input or a wrong shape."""
    missing = [n for n in input_names(g) if n not in arrays]
    if missing:
        raise DataError(f"{where} lacks input(s) {', '.join(map(quote, missing))} (it holds: "
                        f"{', '.join(map(quote, arrays)) or 'nothing'})")
    return _split(g, dict(arrays), where)


def _arrays_from_file(g: Graph, path: Path) -> dict[str, np.ndarray]:
    names = input_names(g)
    data = read_arrays(path, "calibration file")
    chosen = _choose_arrays(g, path, data)
    return {n: as_input_dtype(chosen[n], v.dtype, f"calibration file {quote_path(path)}, input "
                              f"{quote(n)},") for n, v in zip(names, g.inputs)}


def _choose_arrays(g: Graph, path: Path, data) -> dict[str, np.ndarray]:
    names = input_names(g)
    if isinstance(data, np.ndarray):
        if len(names) != 1:
            raise DataError(f"{quote_path(path)} holds one array but the model has {len(names)} "
                            "inputs; use an .npz keyed by input name")
        return {names[0]: data}
    arrays = data
    if all(n in arrays for n in names):
        return {n: arrays[n] for n in names}
    if len(names) == 1:
        shape = g.inputs[0].shape
        for key in ("x", "input", "inputs", "data"):
            if key in arrays:
                return {names[0]: arrays[key]}
        fits = [a for a in arrays.values() if a.shape[1:] == tuple(shape[1:])]
        if len(fits) == 1:
            return {names[0]: fits[0]}
    missing = [n for n in names if n not in arrays]
    raise DataError(f"{quote_path(path)} lacks input(s) {', '.join(map(quote, missing))} (it "
                    f"holds: {', '.join(map(quote, arrays)) or 'nothing'})")


def load_calibration_inputs(g: Graph, path: str | Path, preprocess: ImagePreprocess | None = None,
                            limit: int | None = None) -> list[dict[str, np.ndarray]]:
    """Samples (one dict of model-shaped inputs each) from an .npy/.npz file or a folder.

    A folder may hold .npy/.npz files (each a batch, concatenated in name order) or images
    (single-input image models; see images.py for the preprocessing).
    """
    p = Path(path)
    if limit is not None and limit < 1:
        raise DataError(f"--calib-limit must be at least 1, not {limit}")
    if not p.exists():
        raise DataError(f"calibration data {quote_path(p)} does not exist")
    if not p.is_dir():  # a regular file, or /dev/zero, a FIFO...: refused by read_arrays
        samples = _split(g, _arrays_from_file(g, p), f"calibration file {quote_path(p)}")
    else:
        try:
            arrays_files = sorted(f for f in p.iterdir() if f.suffix in (".npy", ".npz"))
        except OSError as e:
            raise DataError(f"calibration folder {quote_path(p)} cannot be listed: "
                            f"{e.strerror or e}") from None
        if arrays_files:
            samples = []
            for f in arrays_files:
                samples += _split(g, _arrays_from_file(g, f), f"calibration file {quote_path(f)}")
        else:
            if not _has_images(p):
                raise DataError(f"calibration folder {quote_path(p)} holds no .npy/.npz files or "
                                "images")
            if len(g.inputs) != 1:
                raise DataError("an image folder can calibrate only single-input models; give "
                                "an .npz keyed by input name")
            stacked = load_image_folder(p, g.inputs[0].shape, preprocess or ImagePreprocess(),
                                        limit=limit)
            samples = _split(g, {input_names(g)[0]: stacked}, f"calibration folder {quote_path(p)}")
    if not samples:
        raise DataError(f"calibration data {quote_path(p)} holds no samples")
    return samples[:limit] if limit else samples


def _has_images(folder: Path) -> bool:
    try:
        return any(f.suffix.lower() in IMAGE_SUFFIXES for f in folder.rglob("*"))
    except OSError:
        return True  # load_image_folder names the problem


def random_calibration_inputs(g: Graph, count: int = DEFAULT_RANDOM_SAMPLES,
                              seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Seeded N(0, 1) samples (integers 0..9 for integer inputs), for smoke tests."""
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(count):
        sample = {}
        for name, v in zip(input_names(g), g.inputs):
            if v.dtype.is_float:
                sample[name] = rng.standard_normal(v.shape).astype(v.dtype.np)
            else:
                sample[name] = rng.integers(0, 10, v.shape).astype(v.dtype.np)
        samples.append(sample)
    return samples


# ------------------------------------------------------------------------------ running
def run_fast(g: Graph, feeds: dict[str, np.ndarray], observer=None,
             keep_all: bool = False) -> dict[str, np.ndarray]:
    """`edgec.interp.run_graph` with the float32 fast kernels of fast_kernels.py (by value
    name; every value with `keep_all`). Epilogue ops with a non-clamp activation also report
    their value before the activation (as NAME + PRE_ACTIVATION): int8 turns it into a lookup.
    """
    def kernel(node, args):
        run_node = node
        pre_activation = (observer is not None and node.op in EPILOGUE_OPS
                          and node.attrs.get("activation", "none") not in CLAMP_ACTIVATIONS)
        if pre_activation:
            run_node = copy.copy(node)
            run_node.attrs = {**node.attrs, "activation": "none"}
        fast = FAST_KERNELS.get(node.op)
        result = fast(run_node, *args) if fast is not None else None
        results = (result,) if result is not None else \
            get_op(node.op).reference(run_node, *args)
        if pre_activation:
            observer(node.output.name + PRE_ACTIVATION, results[0])
            axis = 1 if node.attrs.get("layout", "NHWC") == "NCHW" else -1
            results = (activation_np(np.asarray(results[0]), node.attrs, axis),)
        return results

    env = {v.name: np.asarray(feeds[n]) for v, n in zip(g.inputs, input_names(g))}
    with deterministic_math():  # host-independent exp/log/tanh (edgec/detmath.py)
        env = execute(g, env, observer=observer, keep_all=keep_all, kernel=kernel)
    return env if keep_all else {v.name: env[v.name] for v in g.outputs}


# ------------------------------------------------------------------------------ batching
def batched_graph(g: Graph, factor: int) -> Graph | None:
    """A copy of `g` running `factor` samples at once (leading axes scaled), or None."""
    if factor == 1:
        return g
    bg = g.clone()
    for v in bg.inputs:
        if not v.shape:
            return None
        v.type = v.type.with_shape((v.shape[0] * factor, *v.shape[1:]))
    try:
        for node in bg.nodes:
            want = [v.type.with_shape((v.shape[0] * factor, *v.shape[1:])) if v.shape else None
                    for v in node.outputs]
            if any(t is None for t in want):
                return None
            if node.op == "Reshape":
                node.attrs["shape"] = list(want[0].shape)
                node.attrs["allowzero"] = 0
            got = get_op(node.op).infer(node)
            if list(got) != want:
                return None
            for v, t in zip(node.outputs, got):
                v.type = t
    except Exception:  # any op that cannot take the larger batch: run sample by sample
        return None
    bg.meta["input_names"] = [v.name for v in bg.inputs]
    return bg


def _stack(samples: list[dict[str, np.ndarray]], names: list[str]) -> dict[str, np.ndarray]:
    return {n: np.concatenate([s[n] for s in samples]) for n in names}


def _float_values(g: Graph) -> set[str]:
    names = {v.name for v in g.inputs if v.dtype.is_float}
    for node in g.nodes:
        names |= {v.name for v in node.outputs if v.dtype.is_float}
    return names


def _batching_works(g: Graph, bg: Graph, samples) -> bool:
    """True when `bg` (factor 2) reproduces every value of two single runs exactly."""
    singles = [run_fast(g, s, keep_all=True) for s in samples[:2]]
    feeds = {n: np.concatenate([s[n] for s in samples[:2]]) for n in input_names(g)}
    try:
        both = run_fast(bg, feeds, keep_all=True)
    except Exception:
        return False
    for name, arr in both.items():
        parts = np.split(arr, 2) if arr.ndim else None
        if parts is None:
            return False
        for part, single in zip(parts, singles):
            ref = single.get(name)
            if ref is None or part.shape != ref.shape:
                return False
            if not np.array_equal(part, ref, equal_nan=True):
                finite = ref[np.isfinite(ref)] if ref.dtype.kind == "f" else ref
                peak = float(np.max(np.abs(finite.astype(np.float64)), initial=0.0))
                if not np.allclose(part, ref, rtol=1e-5, atol=1e-6 * (peak + 1)):
                    return False
    return True


def calibrate(g: Graph, samples: list[dict[str, np.ndarray]], method: str = "minmax",
              percentile: float = DEFAULT_PERCENTILE, source: str = "data",
              progress: bool | None = None, chunk: int = CHUNK) -> Calibration:
    """Run `samples` through the fp32 graph `g` and collect statistics of every float value."""
    if method not in METHODS:
        raise DataError(f"unknown calibration method '{method}' (known: {', '.join(METHODS)})")
    if not (50.0 < percentile <= 100.0):
        raise DataError(f"--calib-percentile must be in (50, 100], got {percentile}")
    t0 = time.perf_counter()
    wanted = _float_values(g)
    stats: dict[str, TensorStats] = {n: TensorStats() for n in sorted(wanted)}
    public_to_value = dict(zip(input_names(g), [v.name for v in g.inputs]))

    def observe(name: str, arr: np.ndarray) -> None:
        if name in stats:
            stats[name].update(arr)
        elif name.endswith(PRE_ACTIVATION):
            stats[name] = TensorStats()
            stats[name].update(arr)

    def observe_inputs(feeds: dict[str, np.ndarray]) -> None:
        for public, arr in feeds.items():
            observe(public_to_value[public], arr)

    n = len(samples)
    batched = False
    # The float graph runs in IEEE arithmetic, as the C does: a value overflowing to inf or
    # becoming NaN on extreme data is counted apart by TensorStats, not a numpy warning.
    with Progress(f"calibrating ({method})", n, enabled=progress) as bar, \
            np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        done = 0
        bg = batched_graph(g, 2) if n >= 4 and chunk > 1 else None
        if bg is not None and _batching_works(g, bg, samples):
            batched = True
        while done < n:
            if batched:
                size = min(chunk, n - done)
                part = samples[done:done + size]
                cg = batched_graph(g, size) if size > 1 else g
                if cg is None:
                    batched = False
                    continue
                feeds = {public: np.concatenate([s[public] for s in part])
                         for public in input_names(g)}
                observe_inputs(feeds)
                run_fast(cg, feeds, observer=observe)
                done += size
                bar.advance(size)
            else:
                observe_inputs(samples[done])
                run_fast(g, samples[done], observer=observe)
                done += 1
                bar.advance(1)
    empty = [name for name, s in stats.items() if s.count == 0 and s.nonfinite]
    if empty:
        raise DataError(f"calibration produced only NaN/inf for value '{empty[0]}'")
    return Calibration(stats, method, percentile, n, source, time.perf_counter() - t0, batched)


def snr_db(ref: np.ndarray, got: np.ndarray) -> float:
    """10 log10(sum ref^2 / sum (got - ref)^2); inf when identical. Positions where `ref` is
    inf or NaN (extreme calibration data) are left out; -inf if `got` is not finite where
    `ref` is."""
    r = np.asarray(ref, np.float64).reshape(-1)
    g = np.broadcast_to(np.asarray(got, np.float64), np.shape(ref)).reshape(-1)
    finite = np.isfinite(r)
    if not finite.all():
        r, g = r[finite], g[finite]
    if not np.isfinite(g).all():
        return -math.inf
    noise = float(np.sum((g - r) ** 2))  # float32 values: squares stay below 1.2e77
    signal = float(np.sum(r * r))
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)
