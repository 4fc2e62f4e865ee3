/*
 * edgec_os.c - see edgec_os.h. Linux (glibc, musl, bionic); elsewhere every call answers
 * EDGEC_OS_ENOTSUP. No allocation: fixed buffers, files read with stdio.
 */
#if defined(__linux__) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET */
#endif

#include "edgec_os.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#ifdef __linux__
#include <sched.h>
#include <unistd.h>
#endif

#define EDGEC_OS_PATH_MAX 512
#define EDGEC_OS_LINE_MAX 512

static const char *edgec_os_or(const char *root, const char *fallback)
{
    return root ? root : fallback;
}

/* First integer in the file `dir/name`, or -1 when absent or unreadable. "max" reads as -2. */
static long long edgec_os_read_number(const char *dir, const char *name)
{
    char path[EDGEC_OS_PATH_MAX];
    char line[EDGEC_OS_LINE_MAX];
    long long value = -1;
    FILE *f;
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) return -1;
    f = fopen(path, "r");
    if (!f) return -1;
    if (fgets(line, sizeof line, f)) {
        if (strncmp(line, "max", 3) == 0) value = -2;
        else if (sscanf(line, "%lld", &value) != 1 || value < 0) value = -1;
    }
    fclose(f);
    return value;
}

int edgec_os_core_masks(const char *cpu_root, uint64_t *big, uint64_t *little)
{
    const char *root = edgec_os_or(cpu_root, "/sys/devices/system/cpu");
    long long figure[EDGEC_OS_CORES_MASK_BITS];
    long long best = -1;
    uint64_t present = 0;
    int cpu, by_capacity = 0;
    char dir[EDGEC_OS_PATH_MAX];
    if (!big || !little) return EDGEC_OS_EINVAL;
    *big = *little = 0;
#ifndef __linux__
    (void)root;
    (void)figure;
    (void)best;
    (void)present;
    (void)cpu;
    (void)by_capacity;
    (void)dir;
    return EDGEC_OS_ENOTSUP;
#else
    for (cpu = 0; cpu < EDGEC_OS_CORES_MASK_BITS; cpu++) {
        figure[cpu] = -1;
        if (snprintf(dir, sizeof dir, "%s/cpu%d", root, cpu) >= (int)sizeof dir) continue;
        if (edgec_os_read_number(dir, "cpu_capacity") >= 0) by_capacity = 1;
    }
    for (cpu = 0; cpu < EDGEC_OS_CORES_MASK_BITS; cpu++) {
        if (snprintf(dir, sizeof dir, "%s/cpu%d", root, cpu) >= (int)sizeof dir) continue;
        if (access(dir, F_OK) != 0) continue;
        present |= (uint64_t)1 << cpu;
        figure[cpu] = by_capacity ? edgec_os_read_number(dir, "cpu_capacity")
                                  : edgec_os_read_number(dir, "cpufreq/cpuinfo_max_freq");
        if (figure[cpu] > best) best = figure[cpu];
    }
    if (best < 0) {
        *big = present;
        return EDGEC_OS_ENOENT;
    }
    for (cpu = 0; cpu < EDGEC_OS_CORES_MASK_BITS; cpu++) {
        if (!(present >> cpu & 1)) continue;
        if (figure[cpu] == best) *big |= (uint64_t)1 << cpu;
        else *little |= (uint64_t)1 << cpu;
    }
    return EDGEC_OS_OK;
#endif
}

int edgec_os_set_cores(uint64_t cores, const char *cpu_root)
{
#ifdef __linux__
    uint64_t mask = cores, big = 0, little = 0;
    uint64_t selection = cores & ~(((uint64_t)1 << EDGEC_OS_CORES_MASK_BITS) - 1);
    cpu_set_t set;
    int cpu;
    if (selection) {
        edgec_os_core_masks(cpu_root, &big, &little);
        if (selection == EDGEC_CORES_BIG) mask = big;
        else if (selection == EDGEC_CORES_LITTLE) mask = little;
        else if (selection == EDGEC_CORES_ALL) mask = big | little;
        else return EDGEC_OS_EINVAL;
    }
    if (!mask) return EDGEC_OS_EINVAL;
    CPU_ZERO(&set);
    for (cpu = 0; cpu < EDGEC_OS_CORES_MASK_BITS; cpu++)
        if (mask >> cpu & 1) CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
        return errno == EPERM ? EDGEC_OS_EPERM : EDGEC_OS_EINVAL;
    return EDGEC_OS_OK;
#else
    (void)cores;
    (void)cpu_root;
    return EDGEC_OS_ENOTSUP;
#endif
}

int edgec_os_set_realtime(int priority)
{
#ifdef __linux__
    struct sched_param param;
    int policy = priority > 0 ? SCHED_FIFO : SCHED_OTHER;
    if (priority < 0 || priority > 99) return EDGEC_OS_EINVAL;
    if (priority > 0 && (priority < sched_get_priority_min(SCHED_FIFO)
                         || priority > sched_get_priority_max(SCHED_FIFO)))
        return EDGEC_OS_EINVAL;
    memset(&param, 0, sizeof param);
    param.sched_priority = priority;
    if (sched_setscheduler(0, policy, &param) != 0)
        return errno == EPERM ? EDGEC_OS_EPERM : EDGEC_OS_EINVAL;
    return EDGEC_OS_OK;
#else
    (void)priority;
    return EDGEC_OS_ENOTSUP;
#endif
}

/* MemAvailable in bytes from `proc_root`/meminfo, or -1. */
static long long edgec_os_mem_available(const char *proc_root)
{
    char path[EDGEC_OS_PATH_MAX];
    char line[EDGEC_OS_LINE_MAX];
    long long kib = -1;
    FILE *f;
    if (snprintf(path, sizeof path, "%s/meminfo", proc_root) >= (int)sizeof path) return -1;
    f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lld kB", &kib) == 1) break;
    fclose(f);
    return kib < 0 ? -1 : kib * 1024;
}

/* The process's cgroup v2 directory ("0::/path" in /proc/self/cgroup), or "" when none. */
static void edgec_os_own_cgroup(const char *proc_root, char *out, size_t size)
{
    char path[EDGEC_OS_PATH_MAX];
    char line[EDGEC_OS_LINE_MAX];
    FILE *f;
    out[0] = '\0';
    if (snprintf(path, sizeof path, "%s/self/cgroup", proc_root) >= (int)sizeof path) return;
    f = fopen(path, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "0::", 3) == 0) {
            line[strcspn(line, "\n")] = '\0';
            if (snprintf(out, size, "/sys/fs/cgroup%s", line + 3) >= (int)size) out[0] = '\0';
            break;
        }
    }
    fclose(f);
}

int64_t edgec_os_available_memory(const char *proc_root, const char *cgroup_dir)
{
    const char *proc = edgec_os_or(proc_root, "/proc");
    char own[EDGEC_OS_PATH_MAX];
    long long available = edgec_os_mem_available(proc);
    long long limit, current;
    if (!cgroup_dir) {
        edgec_os_own_cgroup(proc, own, sizeof own);
        cgroup_dir = own[0] ? own : NULL;
    }
    if (cgroup_dir) {
        limit = edgec_os_read_number(cgroup_dir, "memory.max");
        current = edgec_os_read_number(cgroup_dir, "memory.current");
        if (limit >= 0 && current >= 0) {
            long long room = limit > current ? limit - current : 0;
            if (available < 0 || room < available) available = room;
        }
    }
    return available < 0 ? EDGEC_OS_ENOENT : (int64_t)available;
}
