/*
 * insncount: a QEMU TCG plugin that counts the guest instructions executed between two addresses.
 *
 * The firmware calls an empty marker function before and after the code it measures. Every time
 * execution reaches the start address the plugin notes the running instruction count; every time
 * it reaches the stop address it prints the instructions executed since the last start:
 *
 *     insncount: region 1: 1234 instructions
 *
 * Counts are of executed instructions (QEMU has no cycle model): they are exact and identical
 * from run to run, because TCG executes the guest deterministically for a single-core program
 * without interrupts.
 *
 * Usage (output needs -d plugin; -D FILE sends it to a file):
 *     qemu-system-arm ... -plugin ./libinsncount.so,start=0x1a0,stop=0x1a4 -d plugin -D log.txt
 * Addresses are the marker functions' entry points (for Thumb code, with bit 0 cleared).
 *
 * Build: cc -shared -fPIC -O2 -I<dir with qemu-plugin.h> -o libinsncount.so insncount.c
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

static uint64_t start_addr;
static uint64_t stop_addr;
static uint64_t executed; /* incremented inline by the translated code: one per instruction */
static uint64_t mark;
static unsigned int regions;
static int in_region;

static void on_start(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    mark = executed;
    in_region = 1;
}

static void on_stop(unsigned int vcpu_index, void *userdata)
{
    char line[96];

    (void)vcpu_index;
    (void)userdata;
    if (!in_region) {
        return;
    }
    in_region = 0;
    regions += 1;
    snprintf(line, sizeof line, "insncount: region %u: %" PRIu64 " instructions\n", regions,
             executed - mark);
    qemu_plugin_outs(line);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    size_t i;

    (void)id;
    for (i = 0; i < n; ++i) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint64_t vaddr = qemu_plugin_insn_vaddr(insn);

        /* Both markers see the count at the same point of their instruction: the difference is exact. */
        if (vaddr == start_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_start, QEMU_PLUGIN_CB_NO_REGS, NULL);
        } else if (vaddr == stop_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_stop, QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &executed, 1);
    }
}

static void report_total(qemu_plugin_id_t id, void *userdata)
{
    char line[96];

    (void)id;
    (void)userdata;
    snprintf(line, sizeof line, "insncount: total: %" PRIu64 " instructions\n", executed);
    qemu_plugin_outs(line);
}

static int parse_address(const char *arg, const char *key, uint64_t *out)
{
    size_t len = strlen(key);
    char *end;

    if (strncmp(arg, key, len) != 0 || arg[len] != '=') {
        return 0;
    }
    *out = strtoull(arg + len + 1, &end, 0);
    return *end == '\0' && end != arg + len + 1;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
    int have_start = 0;
    int have_stop = 0;
    int i;

    (void)info;
    for (i = 0; i < argc; ++i) {
        if (parse_address(argv[i], "start", &start_addr)) {
            have_start = 1;
        } else if (parse_address(argv[i], "stop", &stop_addr)) {
            have_stop = 1;
        } else {
            fprintf(stderr, "insncount: unknown argument '%s' (want start=ADDR,stop=ADDR)\n",
                    argv[i]);
            return -1;
        }
    }
    if (!have_start || !have_stop || start_addr == stop_addr) {
        fprintf(stderr, "insncount: need two different addresses start=ADDR,stop=ADDR\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, report_total, NULL);
    return 0;
}
