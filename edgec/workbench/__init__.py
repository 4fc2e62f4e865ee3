"""The developer workbench: everything that builds, runs and measures the generated C around
the compiler (verify, per-layer debug, bench, instruction counting, report, toolchain runners,
CPU clocks). It sits above the compiler: nothing below it imports from here."""
