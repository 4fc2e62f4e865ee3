"""ISA helpers of the C back-end: for each instruction set, which layers its kernels take
(shape rules) and the compile-time weight packing they need. Kernel families under
codegen/c/kernels/ call them from their ISA candidates: x86_f32 / x86_q8 (AVX2, AVX-512
VNNI), arm64_f32 / arm64_q8 (NEON, SDOT)."""
