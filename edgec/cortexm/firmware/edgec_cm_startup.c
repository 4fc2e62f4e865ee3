/*
 * edgec_cm_startup.c - minimal Cortex-M start-up for edgec's firmware images: the vector
 * table (initial stack pointer, reset and fault handlers), copying .data from flash to RAM,
 * zeroing .bss, enabling the FPU when the build uses one, then main(). The symbols come from
 * the board's linker script (edgec_cm_<board>.ld). A fault stops the emulator with an error
 * (semihosting) instead of hanging.
 */
#include <stdint.h>

#include "edgec_cm_semihost.h"

int main(void);

extern uint32_t __edgec_stack_top;
extern uint32_t __edgec_data_load;
extern uint32_t __edgec_data_start;
extern uint32_t __edgec_data_end;
extern uint32_t __edgec_bss_start;
extern uint32_t __edgec_bss_end;

/* Coprocessor Access Control Register: full access to CP10 and CP11 (the FPU). */
#define EDGEC_CM_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define EDGEC_CM_CPACR_FPU_FULL_ACCESS (0xFu << 20)

void edgec_cm_reset(void) __attribute__((noreturn));
void edgec_cm_fault(void) __attribute__((noreturn));

void edgec_cm_reset(void)
{
    uint32_t *src = &__edgec_data_load;
    uint32_t *dst = &__edgec_data_start;
    while (dst < &__edgec_data_end) {
        *dst++ = *src++;
    }
    for (dst = &__edgec_bss_start; dst < &__edgec_bss_end; ++dst) {
        *dst = 0u;
    }
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    EDGEC_CM_CPACR |= EDGEC_CM_CPACR_FPU_FULL_ACCESS;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    edgec_sh_exit(main());
}

void edgec_cm_fault(void)
{
    edgec_sh_puts("edgec: the image took a fault (HardFault, MemManage, BusFault or UsageFault)\n");
    edgec_sh_exit(1);
}

/* Vector table: the first words of flash. Entries 0-15 are the architecture's exceptions;
   the board's interrupts are never enabled by these images. */
typedef void (*edgec_cm_handler)(void);
__attribute__((section(".edgec_vectors"), used))
const edgec_cm_handler edgec_cm_vectors[16] = {
    (edgec_cm_handler)(uintptr_t)&__edgec_stack_top,
    edgec_cm_reset,
    edgec_cm_fault, /* NMI */
    edgec_cm_fault, /* HardFault */
    edgec_cm_fault, /* MemManage */
    edgec_cm_fault, /* BusFault */
    edgec_cm_fault, /* UsageFault */
    edgec_cm_fault, /* SecureFault (ARMv8-M) */
    0, 0, 0,
    edgec_cm_fault, /* SVCall */
    edgec_cm_fault, /* DebugMonitor */
    0,
    edgec_cm_fault, /* PendSV */
    edgec_cm_fault, /* SysTick */
};
