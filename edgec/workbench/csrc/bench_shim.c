/* edgec_bench_shim.c - compiled by edgec bench next to a model's generated C: times
   <prefix>_run in-process. The model is named at compile time (edgec/workbench/runners.py):
     -DEDGEC_BENCH_HEADER='"<prefix>.h"'   the model's header
     -DEDGEC_BENCH_PREFIX=<prefix>         its C identifier prefix
     -DEDGEC_BENCH_NUM_INPUTS=<PREFIX>_NUM_INPUTS */
#define _POSIX_C_SOURCE 200112L
#include <string.h>
#include <time.h>
#include EDGEC_BENCH_HEADER

#define EDGEC_BENCH_PASTE(prefix, name) prefix##name
#define EDGEC_BENCH_JOIN(prefix, name) EDGEC_BENCH_PASTE(prefix, name)
#define EDGEC_BENCH_MODEL(name) EDGEC_BENCH_JOIN(EDGEC_BENCH_PREFIX, name)

static double edgec_bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* For each of `runs` runs: restore the inputs, time one <prefix>_run, store nanoseconds. */
int edgec_bench_time(void *arena, const void *const *inputs, long runs, double *ns);
int edgec_bench_time(void *arena, const void *const *inputs, long runs, double *ns)
{
    long r;
    int i;
    for (r = 0; r < runs; ++r) {
        double t0;
        int status;
        for (i = 0; i < EDGEC_BENCH_NUM_INPUTS; ++i) {
            memcpy(EDGEC_BENCH_MODEL(_input)(arena, i), inputs[i],
                   EDGEC_BENCH_MODEL(_inputs)[i].bytes);
        }
        t0 = edgec_bench_now();
        status = EDGEC_BENCH_MODEL(_run)(arena);
        ns[r] = edgec_bench_now() - t0;
        if (status != 0) {
            return status;
        }
    }
    return 0;
}
