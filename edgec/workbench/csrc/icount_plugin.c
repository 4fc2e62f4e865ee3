/*
 * edgec instruction counter, a QEMU TCG plugin (user mode, one vCPU).
 * Arguments: map=FILE (lines "START END KIND": hex addresses, KIND r = the model's run
 * function, l = a layer function, s = a function that stops counting, i.e. the harness's
 * main) and out=FILE. Counting starts when a block begins at the run function's entry and
 * stops when a block of a stop function executes; each executed block adds its instruction
 * count to the function it lies in, or, outside every listed function (libc, libm), to the
 * function that was running before. Writes "calls N" and "fn INDEX COUNT" lines at exit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MAX_FUNCTIONS 8192
struct function { uint64_t start, end; char kind; };
struct block { int function; int run_entry; uint64_t insns; };

static struct function functions[MAX_FUNCTIONS];
static uint64_t counts[MAX_FUNCTIONS];
static int n_functions, current = -1;
static uint64_t calls;
static const char *out_path = "icount.txt";

static void block_exec(unsigned int vcpu, void *udata)
{
    const struct block *b = udata;
    (void)vcpu;
    if (b->function >= 0) {
        if (functions[b->function].kind == 's') {
            current = -1;
            return;
        }
        if (b->run_entry) {
            calls++;
            current = b->function;
        } else if (current >= 0) {
            current = b->function;
        }
    }
    if (current >= 0) {
        counts[current] += b->insns;
    }
}

static void block_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    const uint64_t pc = qemu_plugin_tb_vaddr(tb);
    struct block *b = calloc(1, sizeof *b);
    int i;
    (void)id;
    if (b == NULL) {
        abort();
    }
    b->function = -1;
    b->insns = qemu_plugin_tb_n_insns(tb);
    for (i = 0; i < n_functions; ++i) {
        if (pc >= functions[i].start && pc < functions[i].end) {
            b->function = i;
            b->run_entry = functions[i].kind == 'r' && pc == functions[i].start;
            break;
        }
    }
    qemu_plugin_register_vcpu_tb_exec_cb(tb, block_exec, QEMU_PLUGIN_CB_NO_REGS, b);
}

static void at_exit(qemu_plugin_id_t id, void *udata)
{
    FILE *f = fopen(out_path, "w");
    int i;
    (void)id;
    (void)udata;
    if (f == NULL) {
        return;
    }
    fprintf(f, "calls %llu\n", (unsigned long long)calls);
    for (i = 0; i < n_functions; ++i) {
        fprintf(f, "fn %d %llu\n", i, (unsigned long long)counts[i]);
    }
    fclose(f);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    const char *map_path = NULL;
    unsigned long long start, end;
    char kind;
    FILE *f;
    int i;
    (void)info;
    for (i = 0; i < argc; ++i) {
        if (strncmp(argv[i], "map=", 4) == 0) {
            map_path = argv[i] + 4;
        } else if (strncmp(argv[i], "out=", 4) == 0) {
            out_path = argv[i] + 4;
        }
    }
    f = map_path ? fopen(map_path, "r") : NULL;
    if (f == NULL) {
        fprintf(stderr, "edgec icount plugin: cannot read map=%s\n", map_path ? map_path : "");
        return 1;
    }
    while (n_functions < MAX_FUNCTIONS && fscanf(f, "%llx %llx %c", &start, &end, &kind) == 3) {
        functions[n_functions].start = start;
        functions[n_functions].end = end;
        functions[n_functions].kind = kind;
        n_functions++;
    }
    fclose(f);
    qemu_plugin_register_vcpu_tb_trans_cb(id, block_translate);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
