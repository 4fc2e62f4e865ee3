"""The C back-end: an IR graph and its memory plan -> a self-contained C99 library.

How a node becomes C (issue 13):

    backend.CBackend ── for each node ──> select.select(node, target) ──> kernel.Kernel
                                            │   (template, params, runtime files)
                                            ├─ guard (refuse what no kernel handles)
                                            ├─ candidates of the target's ISA family
                                            │    x86: kernels/*  using isa/x86_f32, x86_q8
                                            │    arm64: kernels/* using isa/arm64_f32, arm64_q8
                                            └─ portable candidates (every target)

- kernel.py: `Kernel`, `Candidate` and the table of ordered candidates per (op, ISA family).
- select.py: `select(node, target)`, asked once per node; the first candidate that accepts
  the node builds its Kernel (weights packed once, shared through a per-node scratch).
- kernels/: one module per op family (conv, gemm, pool, quantized, elementwise ...)
  registering its candidates (the elementwise family: a table from op to C expression);
  isa/: per-ISA shape rules and weight packing; templates/ (Jinja) and runtime/ (headers
  and sources shipped with the generated C).

edgec/ops holds what an op means (attributes, shapes, numpy reference); how it is lowered
lives here. Adding an ISA (Cortex-M next) is a new ISA family in kernel.ISA_FAMILIES, its
candidate lists and templates: no op and no existing family changes.
"""
