/*
 * edgec_weights.c - see edgec_weights.h. POSIX open/fstat/mmap/madvise/read; fields are read
 * byte by byte (little-endian), so the file needs no particular alignment or host byte order.
 */
#if defined(__linux__) && !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE /* madvise */
#endif

#include "edgec_weights.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The largest folio Linux maps with one page-table entry on x86_64 and arm64 (4 KiB pages). */
#define EDGEC_WEIGHTS_HUGE_BYTES ((size_t)2 << 20)

static const char edgec_weights_magic[8] = {'E', 'D', 'G', 'E', 'C', 'W', 'T', '1'};

static uint64_t edgec_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    int i;
    for (i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static uint64_t edgec_weights_tables_end(const edgec_weights_t *w)
{
    return EDGEC_WEIGHTS_HEADER_BYTES + 16u * (uint64_t)w->tensors + 16u * (uint64_t)w->partitions;
}

static int edgec_weights_read_all(int fd, unsigned char *dst, size_t size)
{
    size_t done = 0;
    while (done < size) {
        ssize_t got = read(fd, dst + done, size - done);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return EDGEC_WEIGHTS_ETRUNCATED;
        done += (size_t)got;
    }
    return EDGEC_WEIGHTS_OK;
}

/* Header, hash and tables of a file already in memory. */
static int edgec_weights_validate(edgec_weights_t *w, const uint8_t model_hash[32])
{
    const unsigned char *h = w->base;
    uint64_t end, i;
    if (w->size < EDGEC_WEIGHTS_HEADER_BYTES || memcmp(h, edgec_weights_magic, 8) != 0
        || edgec_le(h + 8, 4) != 1)
        return EDGEC_WEIGHTS_EFORMAT;
    w->tensors = (uint32_t)edgec_le(h + 12, 4);
    w->partitions = (uint32_t)edgec_le(h + 16, 4);
    if (edgec_le(h + 24, 8) > w->size) return EDGEC_WEIGHTS_ETRUNCATED;
    if (edgec_le(h + 24, 8) != w->size || w->partitions == 0) return EDGEC_WEIGHTS_EFORMAT;
    if (model_hash && memcmp(h + 32, model_hash, 32) != 0)
        return EDGEC_WEIGHTS_EMODEL;
    end = edgec_weights_tables_end(w);
    if (end > w->size) return EDGEC_WEIGHTS_EFORMAT;
    for (i = 0; i < w->tensors; i++) {
        const unsigned char *t = h + EDGEC_WEIGHTS_HEADER_BYTES + 16 * i;
        uint64_t offset = edgec_le(t, 8), bytes = edgec_le(t + 8, 4), part = edgec_le(t + 12, 4);
        if (offset < end || offset > w->size || bytes > w->size - offset || part >= w->partitions)
            return EDGEC_WEIGHTS_EFORMAT;
    }
    for (i = 0; i < w->partitions; i++) {
        const unsigned char *p = h + EDGEC_WEIGHTS_HEADER_BYTES + 16 * (uint64_t)w->tensors + 16 * i;
        uint64_t begin = edgec_le(p, 8), stop = edgec_le(p + 8, 8);
        if (begin > stop || stop > w->size) return EDGEC_WEIGHTS_EFORMAT;
    }
    return EDGEC_WEIGHTS_OK;
}

/* The file mapped read-only one page past a 2 MiB boundary (see the top of edgec_weights.h:
   no 2 MiB block of the file then lines up with a 2 MiB block of addresses, so Linux maps it
   page by page, never a whole 2 MiB folio at once); a plain mmap where that fails. */
static void *edgec_weights_map(int fd, size_t size)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t span = (size + page - 1) / page * page;
    const size_t reserve = span + EDGEC_WEIGHTS_HUGE_BYTES + page;
    unsigned char *r, *at, *end;
    void *map;
    r = (unsigned char *)mmap(0, reserve, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == (unsigned char *)MAP_FAILED) return mmap(0, size, PROT_READ, MAP_PRIVATE, fd, 0);
    at = (unsigned char *)(((uintptr_t)r + EDGEC_WEIGHTS_HUGE_BYTES - 1)
                           / EDGEC_WEIGHTS_HUGE_BYTES * EDGEC_WEIGHTS_HUGE_BYTES) + page;
    map = mmap(at, size, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
    if (map == MAP_FAILED) {
        munmap(r, reserve);
        return mmap(0, size, PROT_READ, MAP_PRIVATE, fd, 0);
    }
    end = r + reserve;
    if (at > r) munmap(r, (size_t)(at - r));
    if (end > at + span) munmap(at + span, (size_t)(end - (at + span)));
    return map;
}

int edgec_weights_open(edgec_weights_t *w, const char *path, const uint8_t model_hash[32],
                       int use_mmap, void *buffer, size_t buffer_bytes)
{
    struct stat st;
    int fd, rc;
    void *map = MAP_FAILED;
    memset(w, 0, sizeof *w);
    w->current = -1;
    fd = open(path, O_RDONLY);
    if (fd < 0) return EDGEC_WEIGHTS_EOPEN;
    if (fstat(fd, &st) != 0 || st.st_size < 0) {
        close(fd);
        return EDGEC_WEIGHTS_EOPEN;
    }
    w->size = (size_t)st.st_size;
    if (w->size < EDGEC_WEIGHTS_HEADER_BYTES) {
        close(fd);
        return w->size >= 8 ? EDGEC_WEIGHTS_ETRUNCATED : EDGEC_WEIGHTS_EFORMAT;
    }
    if (use_mmap) map = edgec_weights_map(fd, w->size);
    if (map != MAP_FAILED) {
        w->base = (const unsigned char *)map;
        w->mapped = 1;
        rc = EDGEC_WEIGHTS_OK;
    } else if (!buffer || buffer_bytes < w->size) {
        rc = EDGEC_WEIGHTS_EBUFFER;
    } else {
        rc = edgec_weights_read_all(fd, (unsigned char *)buffer, w->size);
        w->base = (const unsigned char *)buffer;
    }
    close(fd);
    if (rc == EDGEC_WEIGHTS_OK) rc = edgec_weights_validate(w, model_hash);
    if (rc != EDGEC_WEIGHTS_OK) edgec_weights_close(w);
    return rc;
}

const void *edgec_weights_tensor(const edgec_weights_t *w, uint32_t index, uint32_t bytes)
{
    const unsigned char *t;
    if (!w->base || index >= w->tensors) return 0;
    t = w->base + EDGEC_WEIGHTS_HEADER_BYTES + 16 * (uint64_t)index;
    if (edgec_le(t + 8, 4) != bytes) return 0;
    return w->base + edgec_le(t, 8);
}

/* madvise on partition k's pages: the pages it shares with a neighbour (a partition that
   starts inside a tensor) are read ahead (`outer`) but never released. */
static void edgec_weights_advise(const edgec_weights_t *w, uint32_t k, int advice, int outer)
{
    const unsigned char *p = w->base + EDGEC_WEIGHTS_HEADER_BYTES + 16 * (uint64_t)w->tensors
                             + 16 * (uint64_t)k;
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t begin = edgec_le(p, 8), stop = edgec_le(p + 8, 8);
    if (page == 0 || page > EDGEC_WEIGHTS_PART_ALIGN) return;
    begin = outer ? begin / page * page : (begin + page - 1) / page * page;
    stop = outer ? (stop + page - 1) / page * page : stop / page * page;
    if (stop > w->size) stop = (w->size + page - 1) / page * page; /* the mapping's last page */
    if (stop > begin) madvise((void *)(w->base + begin), (size_t)(stop - begin), advice);
}

int edgec_weights_enter(edgec_weights_t *w, uint32_t k)
{
    uint32_t j;
    if (!w->base || k >= w->partitions) return EDGEC_WEIGHTS_ERANGE;
    if (w->mapped) {
        for (j = 0; j < w->partitions; j++)
            if (j != k && j != k + 1) edgec_weights_advise(w, j, MADV_DONTNEED, 0);
        edgec_weights_advise(w, k, MADV_WILLNEED, 1);
        if (k + 1 < w->partitions) edgec_weights_advise(w, k + 1, MADV_WILLNEED, 1);
    }
    w->current = (int32_t)k;
    return EDGEC_WEIGHTS_OK;
}

int edgec_weights_check_payload(const edgec_weights_t *w)
{
    uint32_t crc = 0xFFFFFFFFu;
    uint64_t i;
    int bit;
    if (!w->base) return EDGEC_WEIGHTS_EFORMAT;
    for (i = edgec_weights_tables_end(w); i < w->size; i++) { /* CRC-32, bit by bit */
        crc ^= w->base[i];
        for (bit = 0; bit < 8; bit++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return (uint64_t)(crc ^ 0xFFFFFFFFu) == edgec_le(w->base + 64, 8) ? EDGEC_WEIGHTS_OK
                                                                    : EDGEC_WEIGHTS_ECHECKSUM;
}

void edgec_weights_close(edgec_weights_t *w)
{
    if (w->mapped && w->base) munmap((void *)w->base, w->size);
    w->base = 0;
    w->mapped = 0;
}
