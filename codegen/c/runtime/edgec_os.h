/*
 * edgec_os.h - the operating-system side of on-device inference (Linux; optional).
 * Part of edgec (Apache-2.0). Bare-metal and firmware builds never include it.
 *
 * What it gives an application that embeds an edgec model:
 *   - which cores are "big": from /sys/devices/system/cpu/cpuN/cpu_capacity (arm64 big.LITTLE
 *     and DynamIQ kernels publish it) or, where that is absent, cpufreq/cpuinfo_max_freq. Cores
 *     whose figure equals the largest one are big, the others little; on a symmetric host every
 *     core is big and none is little.
 *   - edgec_os_set_cores(): pin the calling thread to the big, little or all cores, or to a
 *     mask (sched_setaffinity).
 *   - edgec_os_set_realtime(): SCHED_FIFO at a priority, where the process may; otherwise a
 *     clear return code (EDGEC_OS_EPERM), never a crash and never a silent no-op. Android apps
 *     lack the permission; Linux throttles real-time threads to 95% of each second by default
 *     (/proc/sys/kernel/sched_rt_runtime_us), so a runaway inference cannot starve the system.
 *   - edgec_os_available_memory(): bytes the process can still use: MemAvailable from
 *     /proc/meminfo, lowered by the cgroup v2 limit (memory.max - memory.current) when the
 *     process runs inside one.
 * Every function takes the root of the sysfs/procfs trees it reads (NULL = the real ones), so
 * tests can point it at a fake big.LITTLE tree.
 */
#ifndef EDGEC_OS_H
#define EDGEC_OS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Return codes (0 = success; negative = what went wrong). */
#define EDGEC_OS_OK 0
#define EDGEC_OS_EPERM (-1)       /* not permitted (e.g. SCHED_FIFO without CAP_SYS_NICE) */
#define EDGEC_OS_EINVAL (-2)      /* bad argument (empty mask, priority out of range) */
#define EDGEC_OS_ENOTSUP (-3)     /* not available on this system */
#define EDGEC_OS_ENOENT (-4)      /* the sysfs/procfs file was not found or unreadable */

/* Core selections for edgec_os_set_cores(); any other value is a mask of CPU ids 0..61. */
#define EDGEC_OS_CORES_MASK_BITS 62
#define EDGEC_CORES_ALL ((uint64_t)1 << 62)
#define EDGEC_CORES_BIG ((uint64_t)2 << 62)
#define EDGEC_CORES_LITTLE ((uint64_t)3 << 62)

/* Masks of the big and of the little cores among the first 62 CPUs, read from
 * `cpu_root` (NULL: /sys/devices/system/cpu). Returns EDGEC_OS_OK or EDGEC_OS_ENOENT when no
 * CPU publishes a capacity or a maximum frequency (then *big = every online CPU found,
 * *little = 0). */
int edgec_os_core_masks(const char *cpu_root, uint64_t *big, uint64_t *little);

/* Pin the calling thread: EDGEC_CORES_BIG, EDGEC_CORES_LITTLE, EDGEC_CORES_ALL or a mask.
 * An empty selection (no little cores on a symmetric host, or mask 0) is EDGEC_OS_EINVAL. */
int edgec_os_set_cores(uint64_t cores, const char *cpu_root);

/* SCHED_FIFO at `priority` (1..99) for the calling thread; 0 goes back to SCHED_OTHER. */
int edgec_os_set_realtime(int priority);

/* Bytes available to this process (see the top of this file), or a negative code.
 * `proc_root` (NULL: "/proc") holds meminfo; `cgroup_dir` (NULL: the process's own cgroup v2
 * directory from /proc/self/cgroup under /sys/fs/cgroup) holds memory.max/memory.current. */
int64_t edgec_os_available_memory(const char *proc_root, const char *cgroup_dir);

#ifdef __cplusplus
}
#endif

#endif /* EDGEC_OS_H */
