"""Build and run one Cortex-M kernel call under qemu-system-arm (tests only).

A case is C source generated from numpy arrays: the arrays as `static const` data, the
kernel call inside `kcase_run` (the function the counting plugin measures), the output in
`kcase_out`, which a small main writes to out0.bin over semihosting.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from edgec.codegen.c.carray import c_initializer

from edgec.cortexm.image import build_program
from edgec.cortexm.measure import count_image
from edgec.cortexm.runner import run_image
from edgec.ir import DType
from edgec.targets import get_target

RUNTIME = Path(__file__).resolve().parents[2] / "codegen" / "c" / "runtime"

MAIN_C = r"""
#include <stdint.h>
#include "edgec_cm_semihost.h"

extern int8_t kcase_out[];
extern const uint32_t kcase_out_bytes;
int kcase_run(void);

int main(void)
{
    int handle;
    if (kcase_run() != 0) {
        return 1;
    }
    handle = edgec_sh_open("out0.bin", 1);
    if (handle < 0 || edgec_sh_write(handle, kcase_out, kcase_out_bytes) != 0) {
        return 2;
    }
    edgec_sh_close(handle);
    return 0;
}
"""


def case_source(header: str, arrays: dict[str, np.ndarray], out_len: int, scratch: int,
                body: str) -> str:
    """The C of one case: `arrays` as constants, `body` (statements) inside kcase_run."""
    lines = ["#include <stdint.h>", "#include <string.h>", f'#include "{header}"', ""]
    for name, arr in arrays.items():
        ctype = DType.from_numpy(arr.dtype).ctype
        flat = np.ascontiguousarray(arr).reshape(-1)
        lines.append(f"static const {ctype} {name}[{max(flat.size, 1)}] = "
                     f"{c_initializer(flat)};")
    lines += [f"int8_t kcase_out[{max(out_len, 1)}];",
              f"const uint32_t kcase_out_bytes = {out_len}u;",
              f"static int8_t kcase_scratch[{max(scratch, 1)}] __attribute__((aligned(8)));", "",
              "__attribute__((noinline)) int kcase_run(void)", "{",
              "    (void)kcase_scratch;", body, "    return 0;", "}", ""]
    return "\n".join(lines)


def run_case(tmp: Path, target_name: str, header: str, arrays: dict[str, np.ndarray],
             out_len: int, body: str, scratch: int = 0, count: bool = False):
    """(int8 output, instructions inside kcase_run or None)."""
    target = get_target(target_name)
    tmp.mkdir(parents=True, exist_ok=True)
    case_c, main_c = tmp / "kcase.c", tmp / "kcase_main.c"
    case_c.write_text(case_source(header, arrays, out_len, scratch, body))
    main_c.write_text(MAIN_C)
    image = build_program([case_c, main_c], target, tmp / "kcase.elf", include_dirs=(RUNTIME,))
    specs = [((out_len,), np.int8)]
    if count:
        res = count_image(image, target, "kcase", [], specs)
        return res["outputs"][0], res["count"].per_inference
    return run_image(image, [], specs)[0], None
