/*
 * edgec_pool.c - see edgec_pool.h for the scheme. pthreads, and the GCC/Clang __atomic
 * builtins for the counters that workers spin on (C99 has no atomics of its own).
 */
#include "edgec_pool.h"

#include "edgec_os.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

/* Spins before sleeping (~1 ms of sched_yield): bridges the gap between two split layers. */
#ifndef EDGEC_POOL_SPINS
#define EDGEC_POOL_SPINS 2000
#endif
/* Chunks a range is cut into per thread: threads claim them in turn, so a thread the OS
   delays (another process, a LITTLE core) leaves its share to the others. */
#define EDGEC_POOL_CHUNKS_PER_THREAD 4

static pthread_t edgec_pool_workers[EDGEC_POOL_MAX_THREADS - 1];
static int edgec_pool_nthreads = 1;
static pthread_mutex_t edgec_pool_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t edgec_pool_wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t edgec_pool_done = PTHREAD_COND_INITIALIZER;
static unsigned edgec_pool_generation; /* atomic: bumped once per task */
static int edgec_pool_open;            /* atomic: 1 while the task takes helpers */
static int edgec_pool_active;          /* atomic: workers inside the task */
static int edgec_pool_next;            /* atomic: the next chunk to claim */
static int edgec_pool_stopping;        /* guarded by the mutex */
static uint64_t edgec_pool_cores;
static int edgec_pool_priority; /* SCHED_FIFO priority of the pool's threads; 0: SCHED_OTHER */
/* The task, published by the release of edgec_pool_open. */
static edgec_task_fn edgec_pool_fn;
static void *edgec_pool_ctx;
static int edgec_pool_n;
static int edgec_pool_chunks;
static edgec_parallel_for_hook edgec_pool_hook;
static void *edgec_pool_hook_user;

/* One step of a spin: give the core away if another thread wants it (on a loaded machine a
   spinning worker would otherwise steal the time the threads doing the work need; measured on
   MobileNetV2 with 2 threads on a shared 2-core host), else a pause. */
static void edgec_pool_relax(void)
{
#ifndef EDGEC_POOL_PAUSE_ONLY
    sched_yield();
#elif defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
    __asm__ __volatile__("yield");
#endif
}

/* Claim chunks of the current task until none is left. */
static void edgec_pool_run_chunks(void)
{
    const long long n = edgec_pool_n, chunks = edgec_pool_chunks;
    int c;
    while ((c = __atomic_fetch_add(&edgec_pool_next, 1, __ATOMIC_RELAXED)) < chunks) {
        const int begin = (int)(c * n / chunks), end = (int)((c + 1) * n / chunks);
        if (begin < end) edgec_pool_fn(edgec_pool_ctx, begin, end);
    }
}

static void *edgec_pool_worker(void *arg)
{
    unsigned seen = 0, now;
    int spins;
    (void)arg;
    if (edgec_pool_cores) edgec_os_set_cores(edgec_pool_cores, 0);
    /* The caller already runs at this priority, so the same process may set it here too. */
    if (edgec_pool_priority) edgec_os_set_realtime(edgec_pool_priority);
    for (;;) {
        now = __atomic_load_n(&edgec_pool_generation, __ATOMIC_ACQUIRE);
        for (spins = 0; now == seen && spins < EDGEC_POOL_SPINS; spins++) {
            edgec_pool_relax();
            now = __atomic_load_n(&edgec_pool_generation, __ATOMIC_ACQUIRE);
        }
        if (now == seen) {
            pthread_mutex_lock(&edgec_pool_mutex);
            while ((now = __atomic_load_n(&edgec_pool_generation, __ATOMIC_ACQUIRE)) == seen
                   && !edgec_pool_stopping)
                pthread_cond_wait(&edgec_pool_wake, &edgec_pool_mutex);
            if (edgec_pool_stopping) {
                pthread_mutex_unlock(&edgec_pool_mutex);
                return 0;
            }
            pthread_mutex_unlock(&edgec_pool_mutex);
        }
        seen = now;
        /* Join, then check the task is still open: the caller closes it and then waits for
           active == 0, so a late worker either helps or stays out, never touches a finished
           task (both sides sequentially consistent: a Dekker-style handshake). */
        __atomic_add_fetch(&edgec_pool_active, 1, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&edgec_pool_open, __ATOMIC_SEQ_CST)) edgec_pool_run_chunks();
        if (__atomic_sub_fetch(&edgec_pool_active, 1, __ATOMIC_ACQ_REL) == 0) {
            pthread_mutex_lock(&edgec_pool_mutex);
            pthread_cond_signal(&edgec_pool_done);
            pthread_mutex_unlock(&edgec_pool_mutex);
        }
    }
}

int edgec_pool_start(int threads, uint64_t cores)
{
    int t;
    if (threads < 1 || threads > EDGEC_POOL_MAX_THREADS) return EDGEC_POOL_EINVAL;
    edgec_pool_stop();
    edgec_pool_cores = cores;
    if (cores) edgec_os_set_cores(cores, 0);
    __atomic_store_n(&edgec_pool_generation, 0, __ATOMIC_RELEASE);
    for (t = 1; t < threads; t++) {
        if (pthread_create(&edgec_pool_workers[t - 1], 0, edgec_pool_worker, 0) != 0) {
            edgec_pool_nthreads = t; /* stop the ones that started */
            edgec_pool_stop();
            return EDGEC_POOL_ESTART;
        }
        edgec_pool_nthreads = t + 1;
    }
    return EDGEC_POOL_OK;
}

/* Policy and priority of worker `t` (0-based); a pthread error number. */
static int edgec_pool_schedule(int t, int priority)
{
#ifdef __linux__
    struct sched_param param;
    memset(&param, 0, sizeof param);
    param.sched_priority = priority;
    return pthread_setschedparam(edgec_pool_workers[t], priority > 0 ? SCHED_FIFO : SCHED_OTHER,
                                 &param);
#else
    (void)t;
    (void)priority;
    return ENOTSUP;
#endif
}

int edgec_pool_set_realtime(int priority)
{
    /* The caller first: where the process lacks the permission nothing has changed yet. */
    int rc = edgec_os_set_realtime(priority), t, u, err;
    if (rc != EDGEC_OS_OK) return rc;
    for (t = 0; t + 1 < edgec_pool_nthreads; t++) {
        err = edgec_pool_schedule(t, priority);
        if (err != 0) { /* put back the threads already changed */
            for (u = 0; u < t; u++) (void)edgec_pool_schedule(u, edgec_pool_priority);
            (void)edgec_os_set_realtime(edgec_pool_priority);
            return err == EPERM ? EDGEC_POOL_EPERM : EDGEC_POOL_EINVAL;
        }
    }
    edgec_pool_priority = priority;
    return EDGEC_POOL_OK;
}

void edgec_pool_stop(void)
{
    int t;
    if (edgec_pool_nthreads <= 1) return;
    pthread_mutex_lock(&edgec_pool_mutex);
    edgec_pool_stopping = 1;
    pthread_cond_broadcast(&edgec_pool_wake);
    pthread_mutex_unlock(&edgec_pool_mutex);
    for (t = 1; t < edgec_pool_nthreads; t++) pthread_join(edgec_pool_workers[t - 1], 0);
    edgec_pool_stopping = 0;
    edgec_pool_nthreads = 1;
}

int edgec_pool_threads(void)
{
    return edgec_pool_hook ? 0 : edgec_pool_nthreads;
}

void edgec_pool_set_hook(edgec_parallel_for_hook hook, void *user)
{
    edgec_pool_hook = hook;
    edgec_pool_hook_user = user;
}

void edgec_parallel_for(edgec_task_fn fn, void *ctx, int n)
{
    int spins;
    if (n <= 0) return;
    if (edgec_pool_hook) {
        edgec_pool_hook(edgec_pool_hook_user, fn, ctx, n);
        return;
    }
    if (edgec_pool_nthreads <= 1 || n < 2) {
        fn(ctx, 0, n);
        return;
    }
    edgec_pool_fn = fn;
    edgec_pool_ctx = ctx;
    edgec_pool_n = n;
    edgec_pool_chunks = n < edgec_pool_nthreads * EDGEC_POOL_CHUNKS_PER_THREAD
                            ? n : edgec_pool_nthreads * EDGEC_POOL_CHUNKS_PER_THREAD;
    __atomic_store_n(&edgec_pool_next, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&edgec_pool_open, 1, __ATOMIC_SEQ_CST);
    pthread_mutex_lock(&edgec_pool_mutex);
    __atomic_add_fetch(&edgec_pool_generation, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&edgec_pool_wake);
    pthread_mutex_unlock(&edgec_pool_mutex);
    edgec_pool_run_chunks();
    __atomic_store_n(&edgec_pool_open, 0, __ATOMIC_SEQ_CST);
    for (spins = 0; spins < EDGEC_POOL_SPINS; spins++) {
        if (__atomic_load_n(&edgec_pool_active, __ATOMIC_SEQ_CST) == 0) return;
        edgec_pool_relax();
    }
    pthread_mutex_lock(&edgec_pool_mutex);
    while (__atomic_load_n(&edgec_pool_active, __ATOMIC_SEQ_CST) != 0)
        pthread_cond_wait(&edgec_pool_done, &edgec_pool_mutex);
    pthread_mutex_unlock(&edgec_pool_mutex);
}
