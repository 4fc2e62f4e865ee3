"""The `edgec` command line. Thin: parses arguments, calls the library, prints.

Every user-facing problem is an EdgecError: one line on stderr, exit code 2, no traceback.
The compiler, the workbench and the op registry are imported inside the commands that use
them: importing them loads every op, pass and back-end, which `edgec --help`, `edgec targets`
and a usage error never need.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from edgec import __version__
from edgec.cli_options import add_model_args, add_pass_args, add_quant_args, compile_options
from edgec.codegen.coreml.options import refuse_other_commands
from edgec.console import Session, quote, set_current, visible
from edgec.console import warn as _console_warn
from edgec.console.progress import Progress
from edgec.console.tables import align_rows
from edgec.console.verify_text import model_name, per_layer_text, print_report_summary
from edgec.console.verify_text import print_verify as _print_verify
from edgec.errors import EdgecError, TargetError
from edgec.output_dir import check_output_dir
from edgec.prune.cli import add_compile_prune_arg, add_prune_parser, pruned_for_compile
from edgec.targets import all_targets, get_target
from edgec.workbench.clocks import clocks_line

VERBOSE_HELP = ("show third-party warnings and logs in full as they happen, and the traceback "
                "of an internal error")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line with exit code 2."""

    def error(self, message):
        raise EdgecError(f"{message} (see 'edgec {self.prog.split(maxsplit=1)[-1]} --help')"
                         if " " in self.prog else f"{message} (see 'edgec --help')")


def _warn(warnings) -> None:
    """edgec's warnings: one line each, after the command's output (as they come with -v)."""
    for w in warnings:
        _console_warn(w)


def cmd_compile(args) -> int:
    """edgec compile MODEL -t TARGET -o OUTDIR."""
    # on use: keeps `edgec --help` light. The Python API's driver: one path for both.
    from edgec.api.driver import compile_with_options

    check_output_dir(args.output)  # a bad -o fails at once, not after the compile

    with pruned_for_compile(args) as model_path:  # --prune (edgec/prune/cli.py)
        compiled = compile_with_options(model_path, compile_options(args))
    if getattr(args, "nnapi_level", None) is not None:  # codegen/tflite/compat.py
        from edgec.codegen.tflite.compat import require_nnapi_level, tflite_bytes  # on use

        require_nnapi_level(tflite_bytes(compiled.files), args.nnapi_level)
    out = compiled.write(args.output)
    _warn(compiled.warnings)
    r = compiled.report.as_dict()
    if getattr(args, "json", False):
        print(json.dumps(dict(r, output_dir=str(out))))
        return 0
    print(f"edgec: compiled {model_name(args.model)} for {r['target']} -> "
          f"{model_name(str(out))}/")
    if r.get("backend") == "coreml":  # a package, no C arena (docs/coreml.md)
        print_report_summary(r)
        return 0
    print(f"  kernels {r['kernels']}, MACs {r['macs']:,}, weights {r['weights_bytes']:,} B, "
          f"arena {r['arena_bytes']:,} B (lower bound {r['arena_lower_bound_bytes']:,} B)")
    q = r.get("quantization")
    if q:
        cal = q.get("calibration")
        how = f"calibration {cal['method']} on {cal['samples']} samples" if cal else q["mode"]
        print(f"  int8 ({q['mode']}): {how}, {len(q.get('layers', []))} int8 layers, "
              f"{len(q.get('float_nodes', []))} float nodes")
    return 0


def cmd_verify(args) -> int:
    """edgec verify MODEL -t TARGET: build, run, compare with onnxruntime."""
    from edgec.workbench.verify import verify_model  # on use: keeps `edgec --help` light

    if getattr(args, "per_layer", False):
        return _verify_per_layer(args)
    res = verify_model(args.model, compile_options(args), inputs_path=args.inputs, seed=args.seed,
                       rtol=args.rtol, sanitize=args.sanitize)
    _warn(res.warnings)
    if args.save_outputs:
        np.savez(args.save_outputs, **res.compiled_outputs)
    if args.json:
        print(json.dumps(res.as_dict()))
    else:
        _print_verify(args, res)
    return 0 if res.ok else 1


def _verify_per_layer(args) -> int:
    """edgec verify --per-layer: the debug build dumps every layer; a table per layer."""
    if get_target(args.target).backend == "tflite":  # LiteRT's tensors (codegen/tflite/)
        from edgec.workbench.tflite_layers import (
            per_layer_report,  # on use: loads the TFLite schema
        )

        text, ok = per_layer_report(args.model, compile_options(args), args.inputs, args.seed)
        print(text)
        return 0 if ok else 1
    # on use: keeps `edgec --help` light
    from edgec.workbench.per_layer import VERIFY_STEPS, verify_per_layer

    with Progress("edgec verify --per-layer", VERIFY_STEPS) as bar:
        res = verify_per_layer(args.model, compile_options(args), inputs_path=args.inputs,
                               seed=args.seed, rtol=args.rtol, sanitize=args.sanitize,
                               progress=bar.advance)
    _warn(res.verify.warnings)
    if args.save_outputs:
        np.savez(args.save_outputs, **res.verify.compiled_outputs)
    if args.json:
        print(json.dumps(res.as_dict()))
    else:
        print(per_layer_text(res, model_name(args.model)))
        if res.crash:
            print("edgec verify: FAIL")
        else:
            print()
            _print_verify(args, res.verify, final=res.ok)
    return 0 if res.ok else 1


def cmd_export_qdq(args) -> int:
    """edgec export-qdq MODEL -o OUT.onnx: edgec's int8 graph as a QDQ ONNX model."""
    from edgec.compiler import compile_model  # on use: keeps `edgec --help` light
    from edgec.quant.qdq_export import export_qdq  # on use: keeps `edgec --help` light

    options = compile_options(args)
    if not options.target.endswith("-int8"):
        raise EdgecError(f"export-qdq needs an int8 target (-t generic-int8), not "
                         f"{quote(options.target)}")
    if options.quant != "static":
        raise EdgecError("export-qdq writes static int8 graphs only (drop --quant dynamic)")
    result = compile_model(args.model, options)
    _warn(result.warnings)
    path = export_qdq(result, args.output)
    print(f"edgec: wrote the int8 graph of {model_name(args.model)} as QDQ ONNX -> {path}")
    return 0


def cmd_run(args) -> int:
    """edgec run MODEL --inputs X.npz: the numpy reference interpreter."""
    from edgec.frontend.onnx import (  # on use: keeps `edgec --help` light
        load_onnx,
        parse_input_shapes,
    )
    from edgec.interp import run_graph  # on use: keeps `edgec --help` light
    from edgec.workbench.compare import load_inputs, random_inputs  # on use: `edgec --help` light

    g = load_onnx(args.model, parse_input_shapes(args.input_shape))
    feeds = load_inputs(args.inputs, g) if args.inputs else random_inputs(g, args.seed)
    outs = run_graph(g, feeds)
    out_path = args.output or "outputs.npz"
    if not out_path.endswith(".npz"):  # numpy would add it; say where the file really is
        out_path += ".npz"
    np.savez(out_path, **outs)
    for name, arr in outs.items():
        print(f"{visible(name, limit=120)}: {arr.dtype}[{'x'.join(map(str, arr.shape))}]")
    print(f"edgec run: outputs saved to {visible(out_path)}")
    return 0


def cmd_report(args) -> int:
    """edgec report MODEL -t TARGET: per-layer table, memory plan as ASCII art, picture."""
    from edgec.workbench.report import run_report  # on use: keeps `edgec --help` light

    print(run_report(args.model, compile_options(args), plot=args.plot, as_json=args.json,
                     width=args.width, nnapi=args.nnapi))
    if args.plot and not args.json:
        print(f"edgec report: memory plan picture written to {args.plot}")
    return 0


def _target_list(values: list[str], default: str) -> list[str]:
    """-t values (repeatable, comma-separated; 'all' = every target) as a list of names."""
    names = [n.strip() for v in values for n in v.split(",") if n.strip()] or [default]
    if "all" in names:
        return list(all_targets())
    return list(dict.fromkeys(names))


def cmd_golden_record(args) -> int:
    """edgec golden record MODEL -t T1,T2 -d DIR: approve the outputs of each target."""
    from edgec.golden import record_case, record_text  # on use: keeps `edgec --help` light

    targets = _target_list(args.target, "generic-fp32")
    args.target = targets[0]
    with Progress("edgec golden record", len(targets)) as bar:
        case_dir, rows = record_case(args.model, targets, args.dir, compile_options(args),
                                     inputs_path=args.inputs, seed=args.seed,
                                     per_layer=args.per_layer, rtol=args.rtol, name=args.name,
                                     progress=bar.advance)
    if args.json:
        print(json.dumps({"case": str(case_dir), "targets": [r.as_dict() for r in rows]}))
    else:
        print(record_text(case_dir, rows))
    return 0 if all(r.status == "recorded" for r in rows) else 1


def cmd_golden_check(args) -> int:
    """edgec golden check DIR...: rerun every recorded case; exit 1 on any regression."""
    # on use: keeps `edgec --help` light
    from edgec.golden import check_cases, check_text, count_checks, find_cases, write_junit

    cases = find_cases(args.dirs)
    targets = _target_list(args.target, "") if args.target else None
    total = count_checks(cases, targets)
    if total == 0:
        raise EdgecError(f"no recorded target matches -t {','.join(targets or [])} in "
                         f"{len(cases)} case(s)")
    with Progress("edgec golden check", total) as bar:
        results = check_cases(cases, targets, sanitize=args.sanitize, progress=bar.advance)
    if args.junit:
        write_junit(results, args.junit)
    if args.json:
        print(json.dumps({"cases": [r.as_dict() for r in results]}))
    else:
        print(check_text(results))
        if args.junit:
            print(f"edgec golden check: JUnit XML written to {args.junit}")
    return 1 if any(r.failed for r in results) else 0


def cmd_bench(args) -> int:
    """edgec bench MODEL -t TARGET: latency of the generated C next to onnxruntime."""
    from edgec.frontend.onnx import parse_input_shapes  # on use: keeps `edgec --help` light
    from edgec.workbench.bench import bench_model  # on use: keeps `edgec --help` light

    if get_target(args.target).backend == "tflite":
        raise TargetError(f"edgec bench times generated C; '{args.target}' writes a .tflite: "
                          "bench a C target (e.g. x86_64-int8), whose LiteRT column times it")
    row = bench_model(args.model, args.target, runs=args.runs, compare=not args.no_compare,
                      input_shapes=parse_input_shapes(args.input_shape),
                      lock_clocks=args.lock_clocks, threads=args.threads,
                      weights=args.weights, partitions=args.partitions)
    if args.json:
        print(json.dumps(row))
        return 0
    if row.get("cortexm"):  # Cortex-M: one counted run; instructions, cycles, flash, RAM
        from edgec.cortexm.report import bench_lines  # on use: keeps `edgec --help` light

        print(f"edgec bench: {model_name(args.model)} on {row['target']} (one run in QEMU, "
              f"deterministic counts; MACs {row['macs']:,})")
        print("\n".join(bench_lines(row)))
        return 0
    print(f"edgec bench: {model_name(args.model)} on {row['target']} "
          f"({row['runs']} runs, median; MACs {row['macs']:,})")
    if row.get("emulated"):
        print(f"  emulated: {row['latency_ms']:.3f} ms wall (not meaningful), "
              f"{row.get('instructions') or 'n/a'} instructions per inference")
        return 0
    peak_name = ("the AVX2 int8 ceiling" if "int8_avx2_peak_gmacs" in row else "the FMA peak")
    share = f", {row['peak_share']:.0%} of {peak_name}" if "peak_share" in row else ""
    print(f"  edgec        {row['latency_ms']:.4f} ms  ({row['gmacs']:.1f} GMAC/s{share})")
    if "threads" in row:  # --threads N: the same library at N threads and at 1
        print(f"  threads      {row['threads']}: {row['latency_ms']:.4f} ms, 1 thread: "
              f"{row['latency_1thread_ms']:.4f} ms, speed-up {row['speedup']:.2f}x "
              f"(onnxruntime with {row['threads']} intra-op threads below)")
    if "weights_rss_peak_bytes" in row:  # --weights external: peak resident weights
        print(f"  weights      {row['weights_file_bytes']:,} B file; peak resident in one run "
              f"{row['weights_rss_peak_bytes']:,} B ({row['weights_rss_share']:.2f}x) with "
              f"{row['partitions']} partitions, {row['weights_rss_peak_bytes_1partition']:,} B "
              "with one")
    print(f"  clocks       {clocks_line(row.get('clocks') or {})}")
    if "onnxruntime_ms" in row:
        print(f"  onnxruntime  {row['onnxruntime_ms']:.4f} ms  ({row['onnxruntime_form']}; "
              f"call overhead {row['onnxruntime_call_overhead_ms']:.4f} ms)")
        print(f"  ratio edgec / onnxruntime: {row['ratio']:.3f}")
    if "avx2_bound_ms" in row:
        print(f"  AVX2 bound   {row['avx2_bound_ms']:.4f} ms  (MACs at the measured "
              f"{row['int8_avx2_peak_gmacs']:.1f} GMAC/s vpmaddwd ceiling; no AVX2 kernel is "
              "faster)")
    print(f"  LiteRT       {row['litert']}" + (" ms (edgec's .tflite: XNNPACK, 1 thread)"
                                                  if row.get("litert_ms") else ""))
    return 0


def cmd_targets(args) -> int:
    """edgec targets: list targets."""
    targets = all_targets()
    if getattr(args, "json", False):
        print(json.dumps([{"name": n, "description": t.description, "backend": t.backend,
                           "precision": t.precision, "isa": t.isa, "cc": t.cc,
                           "emulated": bool(t.runner)} for n, t in targets.items()]))
        return 0
    for line in align_rows([[name, t.description] for name, t in targets.items()]):
        print(line)
    return 0


def cmd_ops(args) -> int:
    """edgec ops: list supported operators."""
    from edgec.codegen.coverage import coverage_cells, op_coverage  # on use: light --help
    from edgec.ops import all_ops

    rows = []
    for name, op in all_ops().items():
        kind = "folds to constants only" if op.fold_only else \
            (type(op).__doc__ or "").strip().splitlines()[0]
        rows.append({"name": name, "summary": kind, "fold_only": op.fold_only,
                     "int8": op.quant.value,
                     "dtypes": sorted(d.value for d in (getattr(op, "dtypes", None) or ())),
                     **op_coverage(name)})
    if getattr(args, "json", False):
        print(json.dumps(rows))
        return 0
    # int8: how int8 builds run the op (float-only: stays float); c: kernels on every C
    # target ("all") | ISA families with their own; int8 op: what int8 builds run instead
    table = [["op", "int8", "c", "int8 op: c", "tflite", "coreml", "semantics"]]
    table += [[r["name"], r["int8"], *coverage_cells(r), r["summary"]] for r in rows]
    for line in align_rows(table):
        print(line)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = _Parser(prog="edgec", description="Compile ONNX models to C for edge devices.")
    p.add_argument("--version", action="version", version=f"edgec {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    sub = p.add_subparsers(dest="command", parser_class=_Parser)

    c = sub.add_parser("compile", help="compile a model to C sources")
    add_model_args(c)
    add_pass_args(c)
    c.add_argument("-o", "--output", required=True, help="output directory")
    c.add_argument("--json", action="store_true", help="print report.json's content")
    c.add_argument("--nnapi-level", type=int, metavar="API",
                   help="TFLite targets: fail naming every operator the NNAPI delegate refuses "
                        "at this Android API level (27 = NNAPI 1.0 ... 30 = 1.3, 31+)")
    add_compile_prune_arg(c)
    c.set_defaults(fn=cmd_compile)

    v = sub.add_parser("verify", help="compile, build, run and compare with onnxruntime")
    add_model_args(v)
    add_pass_args(v)
    v.add_argument("--inputs", help=".npz (keys = input names) or .npy input data")
    v.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    v.add_argument("--rtol", type=float, default=1e-4,
                   help="max error relative to the output's largest magnitude")
    v.add_argument("--sanitize", action="store_true",
                   help="build with AddressSanitizer and UBSan")
    v.add_argument("--save-outputs", metavar="OUT.npz", help="save the compiled code's outputs")
    v.add_argument("--per-layer", action="store_true",
                   help="build with the dump hook and compare every layer with the reference "
                        "(first divergence marked; int8: each layer's SNR against fp32)")
    v.add_argument("--json", action="store_true", help="print one JSON object")
    v.set_defaults(fn=cmd_verify)

    e = sub.add_parser("export-qdq", help="write edgec's int8 graph as a QDQ ONNX model")
    add_model_args(e, target_default="generic-int8")
    add_pass_args(e)
    e.add_argument("-o", "--output", required=True, metavar="OUT.onnx", help="output file")
    e.set_defaults(fn=cmd_export_qdq)

    r = sub.add_parser("run", help="run the reference interpreter")
    r.add_argument("model")
    r.add_argument("--inputs")
    r.add_argument("--input-shape", action="append", default=[])
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("-o", "--output", help="where to save outputs (.npz)")
    r.set_defaults(fn=cmd_run)

    rp = sub.add_parser("report", help="per-layer costs and the memory plan of a model")
    add_model_args(rp)
    add_pass_args(rp)
    rp.add_argument("--plot", metavar="PLAN.svg|PLAN.png",
                    help="write the memory timeline picture (.png needs matplotlib)")
    rp.add_argument("--json", action="store_true", help="print one JSON object")
    rp.add_argument("--width", type=int, default=64, help="columns of the ASCII plan")
    rp.add_argument("--nnapi", action="store_true",
                    help="TFLite targets: per operator, NNAPI delegate acceptance at each "
                         "feature level and GPU delegate acceptance (report.json: nnapi, gpu)")
    rp.set_defaults(fn=cmd_report)

    gd = sub.add_parser("golden", help="record and check golden outputs (regression tests "
                                       "for CI; see docs/golden.md)")
    gsub = gd.add_subparsers(dest="golden_command", parser_class=_Parser)
    gr = gsub.add_parser("record", help="record approved outputs of a model per target")
    gr.add_argument("model", help="ONNX model file")
    gr.add_argument("-t", "--target", action="append", default=[], metavar="T1,T2",
                    help="targets (comma-separated, repeatable; 'all' = every target); "
                         "default generic-fp32")
    gr.add_argument("-d", "--dir", required=True, help="directory of golden cases")
    gr.add_argument("--name", help="case name (default: the model file's stem)")
    src = gr.add_mutually_exclusive_group()
    src.add_argument("--inputs", help=".npz (keys = input names) or .npy input data")
    src.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    gr.add_argument("--per-layer", action="store_true",
                    help="also store every intermediate tensor of the reference run")
    gr.add_argument("--rtol", type=float, default=1e-4,
                    help="fp32 tolerance: max error relative to the output's largest magnitude")
    gr.add_argument("--input-shape", action="append", default=[], metavar="NAME=DxD...",
                    help="fix a dynamic input shape (repeatable)")
    add_quant_args(gr)
    gr.add_argument("--json", action="store_true", help="print one JSON object")
    gr.set_defaults(fn=cmd_golden_record)
    gc = gsub.add_parser("check", help="rerun recorded cases and compare (exit 1 on regression)")
    gc.add_argument("dirs", nargs="+", metavar="DIR",
                    help="golden case directories, or directories searched for them")
    gc.add_argument("-t", "--target", action="append", default=[], metavar="T1,T2",
                    help="check only these recorded targets")
    gc.add_argument("--junit", metavar="FILE", help="write JUnit XML for CI systems")
    gc.add_argument("--sanitize", action="store_true",
                    help="build with AddressSanitizer and UBSan")
    gc.add_argument("--json", action="store_true",
                    help='print {"cases": [{"case", "target", "status", ...}]}')
    gc.set_defaults(fn=cmd_golden_check)
    gd.set_defaults(fn=lambda args: gd.print_help() or 2)

    b = sub.add_parser("bench", help="latency of the generated C next to onnxruntime")
    add_model_args(b, target_default="x86_64-fp32")
    b.add_argument("--runs", type=int, default=100,
                   help="timed runs of each engine after warm-up; default %(default)s")
    b.add_argument("--no-compare", action="store_true", help="time edgec only")
    b.add_argument("--lock-clocks", action="store_true",
                   help="performance governor, minimum = maximum frequency while timing, where "
                        "permitted (restored afterwards; see docs/os-runtime.md)")
    b.add_argument("--threads", type=int, default=1, metavar="N",
                   help="build with --threads N and time it at N threads and at 1 (speed-up), "
                        "onnxruntime with N intra-op threads; default 1")
    b.add_argument("--weights", choices=("rodata", "external"), default="rodata",
                   help="external: time the --weights external build and report its peak "
                        "resident weights with --partitions K and with one partition")
    b.add_argument("--partitions", type=int, default=1, metavar="K",
                   help="--weights external: K partitions; default 1")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.set_defaults(fn=cmd_bench)

    t = sub.add_parser("targets", help="list targets")
    t.add_argument("--json", action="store_true", help="print a JSON list")
    t.set_defaults(fn=cmd_targets)
    o = sub.add_parser("ops", help="list supported operators")
    o.add_argument("--json", action="store_true", help="print a JSON list")
    o.set_defaults(fn=cmd_ops)
    add_prune_parser(sub)  # edgec/prune/cli.py
    for s in [*sub.choices.values(), *gsub.choices.values()]:  # -v after the command too
        s.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                       help=VERBOSE_HELP)
    return p


def _verbose(argv: list[str]) -> bool:
    """-v/--verbose before any '--': known before parsing, so that usage errors obey it."""
    head = argv[:argv.index("--")] if "--" in argv else argv
    return any(a in ("-v", "--verbose") for a in head)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `edgec` console script. Every outcome goes through one console
    session (edgec/console/): bad input is one `edgec: error:` line and exit 2, a bug in
    edgec one `edgec: internal error:` line and exit 3, third-party warnings one line."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser()

    def command() -> int:
        args = parser.parse_args(argv)
        if not getattr(args, "fn", None):
            parser.print_help()
            return 2
        refuse_other_commands(args)  # CoreML targets: compile and verify only
        return args.fn(args)

    with Session(verbose=_verbose(argv)) as session:
        set_current(session)
        try:
            return session.run(command)
        finally:
            set_current(None)


if __name__ == "__main__":
    sys.exit(main())
