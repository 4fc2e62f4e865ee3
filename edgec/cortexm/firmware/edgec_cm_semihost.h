/*
 * edgec_cm_semihost.h - ARM semihosting calls for edgec's Cortex-M test images.
 *
 * Semihosting lets a program running under a debugger or an emulator (qemu-system-arm
 * -semihosting-config enable=on) use the host's files and console: the program executes
 * `bkpt 0xAB` with an operation number in r0 and a pointer to its argument block in r1. Only
 * the operations edgec's verify and bench images need are wrapped. Not part of a model
 * library: firmware that ships a model has no use for it.
 */
#ifndef EDGEC_CM_SEMIHOST_H
#define EDGEC_CM_SEMIHOST_H

#include <stddef.h>

/** Open a host file: mode "rb" or "wb". A handle >= 0, or -1. */
int edgec_sh_open(const char *path, int write);
/** Close a host file handle. */
void edgec_sh_close(int handle);
/** Read exactly `bytes` from a handle; 0 on success. */
int edgec_sh_read(int handle, void *dst, size_t bytes);
/** Write `bytes` to a handle; 0 on success. */
int edgec_sh_write(int handle, const void *src, size_t bytes);
/** Print a NUL-terminated string on the host's console. */
void edgec_sh_puts(const char *text);
/** Stop the emulator: status 0 is a normal exit, anything else an error (QEMU exits 1). */
void edgec_sh_exit(int status) __attribute__((noreturn));

#endif /* EDGEC_CM_SEMIHOST_H */
