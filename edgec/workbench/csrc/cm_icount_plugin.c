/*
 * edgec Cortex-M instruction counter, a QEMU TCG plugin (system mode, one vCPU).
 * See edgec/cortexm/plugin.py for the arguments and the output.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MAX_FUNCTIONS 8192
#define MAX_KINDS 2048
#define KIND_LEN 40
struct function { uint64_t start, end; char kind; };
struct block { int function; int run_entry; size_t n; int *kinds; };

static struct function functions[MAX_FUNCTIONS];
static uint64_t counts[MAX_FUNCTIONS];
static char kind_names[MAX_KINDS][KIND_LEN];
static uint64_t kind_counts[MAX_KINDS];
static int n_functions, n_kinds, current = -1;
static uint64_t calls;
static const char *out_path = "icount.txt";

/* Registers named by a register list "{r4, r5-r7, lr}" (0 without braces). */
static int list_length(const char *ops)
{
    const char *p = strchr(ops, '{');
    int n = 0;
    if (p == NULL) {
        return 0;
    }
    while (*p != '\0' && *p != '}') {
        int a, b;
        ++p;
        while (*p == ' ') {
            ++p;
        }
        if (sscanf(p, "r%d-r%d", &a, &b) == 2 || sscanf(p, "d%d-d%d", &a, &b) == 2 ||
            sscanf(p, "s%d-s%d", &a, &b) == 2) {
            n += b >= a ? b - a + 1 : 1;
        } else if (*p != '}' && *p != '\0') {
            n += 1;
        }
        while (*p != '\0' && *p != ',' && *p != '}') {
            ++p;
        }
    }
    return n;
}

static int intern(const char *disas, const unsigned char *bytes, size_t size)
{
    char key[KIND_LEN];
    const char *ops;
    size_t len = 0;
    int i, regs;
    while (*disas == ' ') {
        ++disas;
    }
    while (disas[len] != '\0' && !isspace((unsigned char)disas[len]) && len < 24) {
        len++;
    }
    memcpy(key, disas, len);
    key[len] = '\0';
    ops = disas + len;
    if (strchr(ops, 'q') != NULL) {
        strcat(key, "/q");
    }
    regs = list_length(ops);
    if (regs > 0) {
        snprintf(key + strlen(key), sizeof key - strlen(key), "/n%d", regs);
    }
    if (key[0] == '.' && bytes != NULL && size >= 2) {
        /* not decoded: name the high byte of the first halfword (Thumb encoding space) */
        snprintf(key + strlen(key), sizeof key - strlen(key), "/h%02x", bytes[1]);
    }
    for (i = 0; i < n_kinds; ++i) {
        if (strcmp(kind_names[i], key) == 0) {
            return i;
        }
    }
    if (n_kinds == MAX_KINDS) {
        return MAX_KINDS - 1;
    }
    strcpy(kind_names[n_kinds], key);
    return n_kinds++;
}

static void block_exec(unsigned int vcpu, void *udata)
{
    const struct block *b = udata;
    size_t i;
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
        counts[current] += b->n;
        for (i = 0; i < b->n; ++i) {
            kind_counts[b->kinds[i]]++;
        }
    }
}

static void block_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    const uint64_t pc = qemu_plugin_tb_vaddr(tb);
    struct block *b = calloc(1, sizeof *b);
    size_t i;
    int f;
    (void)id;
    if (b == NULL) {
        abort();
    }
    b->function = -1;
    b->n = qemu_plugin_tb_n_insns(tb);
    b->kinds = calloc(b->n ? b->n : 1, sizeof *b->kinds);
    if (b->kinds == NULL) {
        abort();
    }
    for (i = 0; i < b->n; ++i) {
        const struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        char *text = qemu_plugin_insn_disas(insn);
        b->kinds[i] = intern(text ? text : "?", qemu_plugin_insn_data(insn),
                             qemu_plugin_insn_size(insn));
        free(text);
    }
    for (f = 0; f < n_functions; ++f) {
        if (pc >= functions[f].start && pc < functions[f].end) {
            b->function = f;
            b->run_entry = functions[f].kind == 'r' && pc == functions[f].start;
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
    for (i = 0; i < n_kinds; ++i) {
        if (kind_counts[i] > 0) {
            fprintf(f, "kind %s %llu\n", kind_names[i], (unsigned long long)kind_counts[i]);
        }
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
        fprintf(stderr, "edgec cortex-m plugin: cannot read map=%s\n", map_path ? map_path : "");
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
