/*
 * edgec_cm_main.c - main() of the images `edgec verify` and `edgec bench` run on Cortex-M
 * targets under qemu-system-arm. Not part of a model library.
 *
 * Build with -DEDGEC_CM_MODEL_H='"PREFIX.h"' -DEDGEC_CM_PREFIX=PREFIX. Reads input i from the
 * host file in<i>.bin (semihosting, in QEMU's working directory), runs the model once on the
 * library's static arena (placed in .edgec_arena by EDGEC_ARENA_SECTION) and writes output i
 * to out<i>.bin. Any failure prints one line and stops QEMU with a non-zero status.
 *
 * Stack high-water mark: before the run, STACK_PAINT_BYTES below main's stack pointer are
 * filled with a pattern; afterwards the lowest overwritten word gives the bytes of stack the
 * run used (the model's functions and every library function they call), written as one
 * little-endian uint32 to stack.bin. Used by `edgec bench` next to the static bound from
 * -fcallgraph-info.
 */
#include <stddef.h>
#include <stdint.h>

#include EDGEC_CM_MODEL_H
#include "edgec_cm_semihost.h"

#define EDGEC_CM_CAT2(a, b) a##b
#define EDGEC_CM_CAT(a, b) EDGEC_CM_CAT2(a, b)
#define EDGEC_CM_MODEL(name) EDGEC_CM_CAT(EDGEC_CM_PREFIX, name)
#define EDGEC_CM_COUNT(table) \
    ((int)(sizeof EDGEC_CM_MODEL(table) / sizeof EDGEC_CM_MODEL(table)[0]))

#define STACK_PAINT_BYTES 16384u
#define STACK_PAINT_WORDS (STACK_PAINT_BYTES / 4u)
#define STACK_PATTERN 0x5AA5C33Cu
/* Bytes left alone just below main's stack pointer when painting. */
#define STACK_PAINT_GAP 64u

static uintptr_t stack_pointer(void)
{
    uintptr_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

/* "in" or "out", a decimal index, ".bin". */
static void file_name(char *dst, const char *stem, int index)
{
    char digits[12];
    int n = 0;
    while (*stem != '\0') {
        *dst++ = *stem++;
    }
    while (index >= 0) { /* a negative index: no digits ("stack.bin") */
        digits[n++] = (char)('0' + index % 10);
        index /= 10;
        if (index == 0) {
            break;
        }
    }
    while (n > 0) {
        *dst++ = digits[--n];
    }
    *dst++ = '.';
    *dst++ = 'b';
    *dst++ = 'i';
    *dst++ = 'n';
    *dst = '\0';
}

static int transfer(const char *stem, int index, void *data, size_t bytes, int write)
{
    char name[32];
    int handle;
    int failed;
    file_name(name, stem, index);
    handle = edgec_sh_open(name, write);
    if (handle < 0) {
        edgec_sh_puts("edgec image: cannot open ");
        edgec_sh_puts(name);
        edgec_sh_puts("\n");
        return 1;
    }
    failed = write ? edgec_sh_write(handle, data, bytes) : edgec_sh_read(handle, data, bytes);
    edgec_sh_close(handle);
    if (failed) {
        edgec_sh_puts("edgec image: short transfer on ");
        edgec_sh_puts(name);
        edgec_sh_puts("\n");
    }
    return failed;
}

int main(void)
{
    volatile uint32_t *top;
    uintptr_t sp0;
    uint32_t w;
    uint32_t stack_used;
    int i;
    for (i = 0; i < EDGEC_CM_COUNT(_inputs); ++i) {
        if (EDGEC_CM_MODEL(_inputs)[i].bytes > 0u &&
            transfer("in", i, EDGEC_CM_MODEL(_input)(NULL, i), EDGEC_CM_MODEL(_inputs)[i].bytes,
                     0)) {
            return 3;
        }
    }
    sp0 = stack_pointer();
    top = (volatile uint32_t *)((sp0 - STACK_PAINT_GAP) & ~(uintptr_t)3u);
    for (w = 1u; w <= STACK_PAINT_WORDS; ++w) {
        top[-(long)w] = STACK_PATTERN;
    }
    if (EDGEC_CM_MODEL(_run)(NULL) != 0) {
        edgec_sh_puts("edgec image: the run function failed\n");
        return 4;
    }
    for (w = STACK_PAINT_WORDS; w > 0u && top[-(long)w] == STACK_PATTERN; --w) {
    }
    /* From main's stack pointer down to the lowest word the run overwrote (a run that used
       no more than the gap reports the gap: an upper bound). */
    stack_used = (uint32_t)(sp0 - (uintptr_t)(top - w));
    if (transfer("stack", -1, &stack_used, sizeof stack_used, 1)) {
        return 6;
    }
    for (i = 0; i < EDGEC_CM_COUNT(_outputs); ++i) {
        if (EDGEC_CM_MODEL(_outputs)[i].bytes > 0u &&
            transfer("out", i, EDGEC_CM_MODEL(_output)(NULL, i),
                     EDGEC_CM_MODEL(_outputs)[i].bytes, 1)) {
            return 5;
        }
    }
    return 0;
}
