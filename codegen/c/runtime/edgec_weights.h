/*
 * edgec_weights.h - weights in a file of their own, mapped read-only and used in partitions.
 * Part of edgec (Apache-2.0). Optional: the default build keeps weights in .rodata.
 *
 * File layout (little-endian; written by edgec.codegen.c.weights_file):
 *   header   96 bytes: magic "EDGECWT1", u32 version (1), u32 tensor count, u32 partition
 *            count, u32 tensor alignment, u64 file size, u8[32] model hash (the hash the
 *            generated code expects: a wrong file is refused), u64 payload checksum (CRC-32,
 *            zlib's polynomial, of every byte after the tables; checked only by
 *            edgec_weights_check_payload),
 *            24 bytes reserved (zero).
 *   tensors  count x 16 bytes: u64 offset, u32 bytes, u32 partition.
 *   parts    partitions x 16 bytes: u64 begin, u64 end (a byte range of the file; a partition
 *            that starts at a tensor starts on a 64 KiB boundary, a multiple of every page size
 *            in use, so releasing one never touches its neighbours' pages; one that starts
 *            inside a tensor, whose layer enters it between two work items, starts anywhere,
 *            and the page it shares with its neighbour is released with neither).
 *   payload  the tensors, each at its offset, aligned.
 *
 * Partitions group consecutive layers. A model run enters partition 0, 1, ... in turn:
 * edgec_weights_enter() asks the kernel to read the next partition ahead (MADV_WILLNEED) and
 * drops every other partition's pages (MADV_DONTNEED; clean file pages, so they are simply
 * re-read from the file if needed again), so only about one partition is resident at once
 * (the read-ahead fills the page cache, not the process's mapping). The file is mapped one
 * page past a 2 MiB boundary: Linux 6.18 keeps an ext4 file's page cache in folios of up to
 * 2 MiB and, where a folio lies inside one 2 MiB block of addresses, maps all of it on the
 * first touch of any of its pages (with one PMD, or with MADV_NOHUGEPAGE by PTEs), which
 * pulled up to 2 MiB of a released neighbour (or of the header) back in; with the addresses
 * out of step with the file offsets no folio lies inside one block and a fault maps 64 KiB.
 * Without mmap (or when mapping fails) the file is read() into a caller-supplied buffer.
 * Every check that fails returns a code; nothing here aborts or reads outside the file.
 */
#ifndef EDGEC_WEIGHTS_H
#define EDGEC_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EDGEC_WEIGHTS_OK 0
#define EDGEC_WEIGHTS_EOPEN (-10)     /* cannot open or stat the file */
#define EDGEC_WEIGHTS_EFORMAT (-11)   /* not an edgec weights file (magic/version/tables) */
#define EDGEC_WEIGHTS_ETRUNCATED (-12) /* shorter than its header says */
#define EDGEC_WEIGHTS_EMODEL (-13)    /* written for another model (hash differs) */
#define EDGEC_WEIGHTS_EBUFFER (-14)   /* no mmap and the fallback buffer is missing or small */
#define EDGEC_WEIGHTS_ECHECKSUM (-15) /* payload bytes differ from the checksum */
#define EDGEC_WEIGHTS_ERANGE (-16)    /* tensor or partition index out of range */

#define EDGEC_WEIGHTS_HEADER_BYTES 96
#define EDGEC_WEIGHTS_PART_ALIGN 65536

typedef struct {
    const unsigned char *base; /* the whole file, mapped or read */
    size_t size;
    int mapped;                /* 1: mmap (release with munmap), 0: caller's buffer */
    uint32_t tensors, partitions;
    int32_t current;           /* partition entered last, -1 before the first */
} edgec_weights_t;

/* Open `path`, check it is a complete weights file for the model whose hash is `model_hash`
 * (32 bytes), and map it read-only. With use_mmap 0, or if mmap fails, read it into `buffer`
 * (`buffer_bytes` large; NULL to forbid the fallback). */
int edgec_weights_open(edgec_weights_t *w, const char *path, const uint8_t model_hash[32],
                       int use_mmap, void *buffer, size_t buffer_bytes);

/* Address of tensor `index`, or NULL when the index or the expected size does not match. */
const void *edgec_weights_tensor(const edgec_weights_t *w, uint32_t index, uint32_t bytes);

/* Partition `k` is about to run: read it (and k+1) ahead, release the ones before k. */
int edgec_weights_enter(edgec_weights_t *w, uint32_t k);

/* Read every payload byte and compare with the header's checksum (touches the whole file). */
int edgec_weights_check_payload(const edgec_weights_t *w);

/* Unmap (mapped files; a caller's buffer stays the caller's). */
void edgec_weights_close(edgec_weights_t *w);

#ifdef __cplusplus
}
#endif

#endif /* EDGEC_WEIGHTS_H */
