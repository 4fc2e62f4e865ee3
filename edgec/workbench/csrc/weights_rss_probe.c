/*
 * weights_rss_probe.c - peak resident memory of an external weights file during a run
 * (edgec bench --weights external; edgec/workbench/weights_rss.py). Linked into the test
 * harness of a `--weights external` build compiled with -DEDGEC_DEBUG_DUMP and
 * -DEDGEC_WEIGHTS_PROBE: after every layer and before every partition change (inside a layer
 * too) it sums the Rss of every mapping of a "*.weights" file in /proc/self/smaps, and at exit
 * writes the largest sum in KiB to the file named by $EDGEC_RSS_PEAK_FILE.
 */
#define _POSIX_C_SOURCE 200112L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long edgec_rss_peak_kb = -1;

static void edgec_rss_report(void)
{
    const char *path = getenv("EDGEC_RSS_PEAK_FILE");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (f == NULL) return;
    fprintf(f, "%ld\n", edgec_rss_peak_kb);
    fclose(f);
}

static void edgec_rss_sample(void)
{
    char line[512];
    unsigned long lo, hi;
    int in_file = 0;
    long sum_kb = 0, kb;
    FILE *f;
    if (edgec_rss_peak_kb < 0) {
        edgec_rss_peak_kb = 0;
        atexit(edgec_rss_report);
    }
    f = fopen("/proc/self/smaps", "r");
    if (f == NULL) return;
    while (fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "%lx-%lx", &lo, &hi) == 2) /* a mapping's first line */
            in_file = strstr(line, ".weights") != NULL;
        if (in_file && sscanf(line, "Rss: %ld kB", &kb) == 1) sum_kb += kb;
    }
    fclose(f);
    if (sum_kb > edgec_rss_peak_kb) edgec_rss_peak_kb = sum_kb;
}

void edgec_debug_dump(int layer, const unsigned char *arena);
void edgec_debug_dump(int layer, const unsigned char *arena)
{
    (void)layer;
    (void)arena;
    edgec_rss_sample();
}

void edgec_weights_probe(uint32_t k);
void edgec_weights_probe(uint32_t k)
{
    (void)k;
    edgec_rss_sample();
}
