"""Cortex-M firmware targets (docs/cortex-m.md): board images, the qemu-system-arm runner,
instruction counts and cycle estimates, and the firmware build files.

  boards.py     target -> QEMU board, CPU and linker script (data)
  image.py      build a semihosting image of a compiled model (startup, vectors, linker script)
  runner.py     run an image in qemu-system-arm: `edgec verify` on cortex-m targets
  measure.py    `edgec bench`: instructions (TCG plugin), estimated cycles, flash and RAM bytes
  cycles.py     instruction-class cost tables per core
  cmake.py      CMakeLists.txt + arm-none-eabi toolchain file written by `edgec compile`
  firmware/     the C and linker scripts shipped as package data
"""
