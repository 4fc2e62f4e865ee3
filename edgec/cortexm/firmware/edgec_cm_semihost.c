/*
 * edgec_cm_semihost.c - the semihosting calls of edgec_cm_semihost.h (ARM semihosting
 * specification, "Semihosting operations": SYS_OPEN 0x01, SYS_CLOSE 0x02, SYS_WRITE0 0x04,
 * SYS_WRITE 0x05, SYS_READ 0x06, SYS_EXIT 0x18; on M-profile the trap is `bkpt 0xAB`).
 */
#include "edgec_cm_semihost.h"

#include <stdint.h>

enum {
    SYS_OPEN = 0x01,
    SYS_CLOSE = 0x02,
    SYS_WRITE0 = 0x04,
    SYS_WRITE = 0x05,
    SYS_READ = 0x06,
    SYS_EXIT = 0x18
};
/* SYS_OPEN modes (ISO C fopen modes by index): 1 = "rb", 5 = "wb". */
enum { OPEN_READ_BINARY = 1, OPEN_WRITE_BINARY = 5 };
/* SYS_EXIT reasons: ApplicationExit ends QEMU with status 0, RunTimeErrorUnknown with 1. */
enum { ADP_APPLICATION_EXIT = 0x20026, ADP_RUNTIME_ERROR = 0x20023 };

static int semihost_call(int operation, const void *argument)
{
    register int r0 __asm__("r0") = operation;
    register const void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static size_t text_length(const char *text)
{
    size_t n = 0;
    while (text[n] != '\0') {
        ++n;
    }
    return n;
}

int edgec_sh_open(const char *path, int write)
{
    const uintptr_t block[3] = {(uintptr_t)path,
                                (uintptr_t)(write ? OPEN_WRITE_BINARY : OPEN_READ_BINARY),
                                (uintptr_t)text_length(path)};
    return semihost_call(SYS_OPEN, block);
}

void edgec_sh_close(int handle)
{
    const uintptr_t block[1] = {(uintptr_t)handle};
    (void)semihost_call(SYS_CLOSE, block);
}

int edgec_sh_read(int handle, void *dst, size_t bytes)
{
    const uintptr_t block[3] = {(uintptr_t)handle, (uintptr_t)dst, (uintptr_t)bytes};
    return semihost_call(SYS_READ, block) != 0; /* returns the number of bytes NOT read */
}

int edgec_sh_write(int handle, const void *src, size_t bytes)
{
    const uintptr_t block[3] = {(uintptr_t)handle, (uintptr_t)src, (uintptr_t)bytes};
    return semihost_call(SYS_WRITE, block) != 0; /* returns the number of bytes NOT written */
}

void edgec_sh_puts(const char *text)
{
    (void)semihost_call(SYS_WRITE0, text);
}

void edgec_sh_exit(int status)
{
    /* 32-bit semihosting: r1 holds the reason itself, not a pointer to a block. */
    (void)semihost_call(SYS_EXIT,
                        (const void *)(uintptr_t)(status == 0 ? ADP_APPLICATION_EXIT
                                                              : ADP_RUNTIME_ERROR));
    for (;;) {
    }
}
