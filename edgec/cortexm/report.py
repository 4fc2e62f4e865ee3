"""Text lines of a Cortex-M `edgec bench` row (the CLI prints them; --json prints the row)."""

from __future__ import annotations


def bench_lines(row: dict) -> list[str]:
    """Human-readable lines for a row from edgec.cortexm.measure.bench_cortexm."""
    ipm = row.get("instructions_per_mac")
    cpm = row.get("cycles_per_mac_est")
    lines = [
        f"  core         {row['core']} (QEMU {row['qemu_machine']}; {row['qemu_version']})",
        f"  compiler     {row['compiler']}",
        f"  instructions {row['instructions']:,} per inference"
        + (f" ({ipm:.3f} per MAC)" if ipm is not None else ""),
        f"  cycles (est) {row['cycles_est']:,}"
        + (f" ({cpm:.3f} per MAC; instruction-class table, docs/cortex-m.md)" if cpm else ""),
        (f"  flash        {row['flash_bytes']:,} B (.text + .rodata + .data; weights "
         f"{row['weights_bytes']:,} B)"),
        (f"  RAM          {row['ram_bytes']:,} B (arena {row['arena_bytes']:,} B + stack "
         f"{row['stack_bytes']:,} B)"),
        f"  device       {'fits' if row['fits_device'] else 'does not fit'} {row['device']}",
    ]
    return lines
