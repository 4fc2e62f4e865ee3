"""CoreML back-end: edgec IR -> MIL (coremltools' builder) -> ML Program `.mlpackage`.

build.py drives it (called by edgec/compiler.py for backend "coreml"), program.py and the
lowering table (registry.py, ops_nn.py, ops_tensor.py) build the MIL program, int8.py carries
edgec's int8 weights over, evaluate.py runs the emitted program in numpy and verify.py is
`edgec verify` for these targets. See docs/coreml.md.
"""
