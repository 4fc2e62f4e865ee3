/*
 * edgec_pool.h - a tiny persistent thread pool for splitting a layer over cores (POSIX).
 * Part of edgec (Apache-2.0). Optional: single-threaded and bare-metal builds never include it.
 *
 * The model's heavy layers call edgec_parallel_for(fn, ctx, n): the range [0, n) of output rows
 * or channels is cut into C = min(n, 4T) contiguous chunks, chunk c = [c*n/C, (c+1)*n/C), that
 * the threads claim in turn from an atomic counter (a thread the OS delays, or a slower core,
 * leaves its share to the others). Every element is computed by exactly one thread with the
 * same code as the single-threaded build, so results are bit-identical to one thread whatever
 * T is and whichever thread ran which chunk.
 *
 * The pool keeps T-1 workers (the caller is the T-th). A call opens the task and bumps a
 * generation counter; workers spin on it for a short while (a layer follows the previous one
 * within microseconds) and then sleep on a condition variable, so an idle pool costs no CPU.
 * The caller claims chunks too, closes the task when none is left, and waits (spin, then
 * sleep) until no worker is inside it; a worker that wakes after the close stays out.
 *
 * An RTOS or an application with its own scheduler installs its parallel-for instead with
 * edgec_pool_set_hook(); the pool's threads are then never started.
 * No allocation: the pool's state is static; at most EDGEC_POOL_MAX_THREADS threads. The pool
 * serves one caller at a time (one model running; run models from one thread, or give each
 * its own library).
 */
#ifndef EDGEC_POOL_H
#define EDGEC_POOL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EDGEC_POOL_MAX_THREADS 16

/* Return codes. */
#define EDGEC_POOL_OK 0
#define EDGEC_POOL_EPERM (-1)  /* SCHED_FIFO not permitted (= EDGEC_OS_EPERM) */
#define EDGEC_POOL_EINVAL (-2) /* thread count or priority out of range */
#define EDGEC_POOL_ESTART (-5) /* a worker thread could not be created */

/* A chunk of work: compute elements [begin, end) of the range. */
typedef void (*edgec_task_fn)(void *ctx, int begin, int end);

/* A user's parallel-for: must call fn on disjoint chunks covering [0, n) and return when all
 * have finished. */
typedef void (*edgec_parallel_for_hook)(void *user, edgec_task_fn fn, void *ctx, int n);

/* Start `threads` - 1 workers (threads in 1..EDGEC_POOL_MAX_THREADS; 1 = no workers). When
 * `cores` is not 0 each worker and the caller are pinned with edgec_os_set_cores(cores, NULL)
 * (EDGEC_CORES_BIG etc.; pinning failures are ignored: the pool still runs). */
int edgec_pool_start(int threads, uint64_t cores);

/* SCHED_FIFO at `priority` (1..99) for the calling thread and every worker, and for workers
 * started later; 0 puts them all back on SCHED_OTHER. EDGEC_POOL_EPERM when the process may
 * not (no CAP_SYS_NICE and RLIMIT_RTPRIO below `priority`: every thread is then left as it
 * was), EDGEC_POOL_EINVAL out of range, EDGEC_OS_ENOTSUP off Linux. */
int edgec_pool_set_realtime(int priority);

/* Stop and join the workers (the pool can be started again). */
void edgec_pool_stop(void);

/* Threads a parallel-for uses now (1 when the pool is not started and no hook is set). */
int edgec_pool_threads(void);

/* Install (or, with NULL, remove) the user's parallel-for. */
void edgec_pool_set_hook(edgec_parallel_for_hook hook, void *user);

/* Run fn over [0, n) on the pool (or the hook, or inline) and return when it is done. */
void edgec_parallel_for(edgec_task_fn fn, void *ctx, int n);

#ifdef __cplusplus
}
#endif

#endif /* EDGEC_POOL_H */
