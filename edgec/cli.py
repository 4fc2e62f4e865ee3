"""The `edgec` command line. Thin: parses arguments, calls the library, prints.

Every user-facing problem is an EdgecError: one line on stderr, exit code 2, no traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from . import __version__
from .errors import EdgecError


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line with exit code 2."""

    def error(self, message):
        raise EdgecError(f"{message} (see 'edgec {self.prog.split()[-1]} --help')"
                         if " " in self.prog else f"{message} (see 'edgec --help')")


def _add_model_args(p: argparse.ArgumentParser, target_default: str | None = "generic-fp32"):
    p.add_argument("model", help="ONNX model file")
    p.add_argument("-t", "--target", default=target_default,
                   help="target name (see 'edgec targets'); default %(default)s")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=DxD...",
                   help="fix a dynamic input shape, e.g. input=1x3x224x224 (repeatable)")


def _add_pass_args(p: argparse.ArgumentParser):
    p.add_argument("--prefix", help="C identifier prefix of the generated API (default: file stem)")
    p.add_argument("--verify-each", action="store_true", help="verify the IR after every pass")
    p.add_argument("--dump-ir", metavar="DIR", help="write the IR text after each pass to DIR")
    p.add_argument("--disable-pass", action="append", default=[], metavar="NAME",
                   help="skip a pass of the target's pipeline (repeatable)")


def _options(args):
    from .compiler import CompileOptions
    from .frontend.onnx import parse_input_shapes

    return CompileOptions(
        target=args.target,
        input_shapes=parse_input_shapes(args.input_shape),
        prefix=getattr(args, "prefix", None),
        verify_each=getattr(args, "verify_each", False),
        dump_ir=Path(args.dump_ir) if getattr(args, "dump_ir", None) else None,
        disabled_passes=tuple(getattr(args, "disable_pass", []) or ()),
    )


def _fmt_err(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isinf(x)):
        return "inf"
    return f"{x:.3g}"


def cmd_compile(args) -> int:
    """edgec compile MODEL -t TARGET -o OUTDIR."""
    from .compiler import compile_model, write_output

    result = compile_model(args.model, _options(args))
    out = write_output(result.files, args.output)
    r = result.report
    print(f"edgec: compiled {Path(args.model).name} for {r['target']} -> {out}/")
    print(f"  kernels {r['kernels']}, MACs {r['macs']:,}, weights {r['weights_bytes']:,} B, "
          f"arena {r['arena_bytes']:,} B (lower bound {r['arena_lower_bound_bytes']:,} B)")
    return 0


def cmd_verify(args) -> int:
    """edgec verify MODEL -t TARGET: build, run, compare with onnxruntime."""
    import numpy as np

    from .verify import verify_model

    res = verify_model(args.model, _options(args), inputs_path=args.inputs, seed=args.seed,
                       rtol=args.rtol, sanitize=args.sanitize)
    if args.save_outputs:
        np.savez(args.save_outputs, **res.compiled_outputs)
    if args.json:
        print(json.dumps(res.as_dict()))
    else:
        rows = [("output", "max abs err", "max rel err", "SNR dB", "status")]
        for o in res.outputs:
            rows.append((o.name, _fmt_err(o.max_abs_err), _fmt_err(o.max_rel_err),
                         "inf" if math.isinf(o.snr_db) else f"{o.snr_db:.1f}",
                         "ok" if o.ok else "MISMATCH"))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        print(f"edgec verify: {Path(args.model).name} on {res.target} "
              f"({res.samples} sample{'s' if res.samples != 1 else ''}, rtol {args.rtol:g})")
        for r in rows:
            print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))
        print("edgec verify: " + ("PASS" if res.ok else "FAIL"))
    return 0 if res.ok else 1


def cmd_run(args) -> int:
    """edgec run MODEL --inputs X.npz: the numpy reference interpreter."""
    import numpy as np

    from .frontend.onnx import load_onnx, parse_input_shapes
    from .interp import run_graph
    from .verify import load_inputs, random_inputs

    g = load_onnx(args.model, parse_input_shapes(args.input_shape))
    feeds = load_inputs(args.inputs, g) if args.inputs else random_inputs(g, args.seed)
    outs = run_graph(g, feeds)
    out_path = args.output or "outputs.npz"
    np.savez(out_path, **outs)
    for name, arr in outs.items():
        print(f"{name}: {arr.dtype}[{'x'.join(map(str, arr.shape))}]")
    print(f"edgec run: outputs saved to {out_path}")
    return 0


def cmd_targets(args) -> int:
    """edgec targets: list targets."""
    from .targets import all_targets

    targets = all_targets()
    width = max(len(n) for n in targets)
    for name, t in targets.items():
        print(f"{name.ljust(width)}  {t.description}")
    return 0


def cmd_ops(args) -> int:
    """edgec ops: list supported operators."""
    from .ops import all_ops

    for name, op in all_ops().items():
        kind = "folds to constants only" if op.fold_only else (op.__doc__ or "").splitlines()[0]
        print(f"{name.ljust(24)} {kind}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = _Parser(prog="edgec", description="Compile ONNX models to C for edge devices.")
    p.add_argument("--version", action="version", version=f"edgec {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    c = sub.add_parser("compile", help="compile a model to C sources")
    _add_model_args(c)
    _add_pass_args(c)
    c.add_argument("-o", "--output", required=True, help="output directory")
    c.set_defaults(fn=cmd_compile)

    v = sub.add_parser("verify", help="compile, build, run and compare with onnxruntime")
    _add_model_args(v)
    _add_pass_args(v)
    v.add_argument("--inputs", help=".npz (keys = input names) or .npy input data")
    v.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    v.add_argument("--rtol", type=float, default=1e-4,
                   help="max error relative to the output's largest magnitude")
    v.add_argument("--sanitize", action="store_true",
                   help="build with AddressSanitizer and UBSan")
    v.add_argument("--save-outputs", metavar="OUT.npz", help="save the compiled code's outputs")
    v.add_argument("--json", action="store_true", help="print one JSON object")
    v.set_defaults(fn=cmd_verify)

    r = sub.add_parser("run", help="run the reference interpreter")
    r.add_argument("model")
    r.add_argument("--inputs")
    r.add_argument("--input-shape", action="append", default=[])
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("-o", "--output", help="where to save outputs (.npz)")
    r.set_defaults(fn=cmd_run)

    t = sub.add_parser("targets", help="list targets")
    t.set_defaults(fn=cmd_targets)
    o = sub.add_parser("ops", help="list supported operators")
    o.set_defaults(fn=cmd_ops)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `edgec` console script."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "fn", None):
            parser.print_help()
            return 2
        return args.fn(args)
    except EdgecError as e:
        print(f"edgec: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("edgec: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("edgec: error: out of memory", file=sys.stderr)
        return 2
    except Exception as e:  # a bug in edgec: one line, details on request
        if os.environ.get("EDGEC_TRACEBACK"):
            raise
        msg = str(e).splitlines()[0] if str(e) else ""
        print(f"edgec: internal error: {type(e).__name__}: {msg} "
              "(set EDGEC_TRACEBACK=1 for details and please report it)", file=sys.stderr)
        return 3




if __name__ == "__main__":
    sys.exit(main())
