/*
 * Application-processor start-up code (AT&T syntax).
 *
 * This blob is copied to physical TRAMPOLINE_BASE (below 1 MiB, 4 KiB
 * aligned) before the BSP sends INIT-SIPI-SIPI with vector BASE >> 12
 * (SDM Vol.3A 9.4.4 "MP Initialization Example"). The AP starts in real mode
 * at CS:IP = (BASE >> 4):0, so every absolute address below is computed as
 * BASE + (label - ap_trampoline_start). The BSP fills the parameter block at
 * the end (CR3, stack, entry, CPU index, EFER bits) before each start-up.
 */

.set BASE, 0x8000

.section .rodata.ap_trampoline, "a"
.balign 16
.global ap_trampoline_start
ap_trampoline_start:
.code16
    cli
    cld
    xorw %ax, %ax
    movw %ax, %ds
    lgdtl BASE + (ap_gdt_ptr - ap_trampoline_start)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $(BASE + (ap_protected - ap_trampoline_start))

.code32
ap_protected:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl %cr4, %eax
    orl $(1 << 5), %eax                 /* PAE */
    movl %eax, %cr4
    movl BASE + (ap_param_cr3 - ap_trampoline_start), %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx              /* IA32_EFER */
    rdmsr
    orl BASE + (ap_param_efer - ap_trampoline_start), %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80000001, %eax               /* PG | PE */
    movl %eax, %cr0
    ljmpl $0x18, $(BASE + (ap_long - ap_trampoline_start))

.code64
ap_long:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movq BASE + (ap_param_stack - ap_trampoline_start), %rsp
    movq BASE + (ap_param_cpu - ap_trampoline_start), %rdi
    movq BASE + (ap_param_entry - ap_trampoline_start), %rax
    xorl %ebp, %ebp
    callq *%rax
1:  cli
    hlt
    jmp 1b

.balign 8
ap_gdt:
    .quad 0                             /* null */
    .quad 0x00CF9A000000FFFF            /* 0x08: 32-bit code */
    .quad 0x00CF92000000FFFF            /* 0x10: data */
    .quad 0x00AF9A000000FFFF            /* 0x18: 64-bit code */
ap_gdt_end:
ap_gdt_ptr:
    .short ap_gdt_end - ap_gdt - 1
    .long BASE + (ap_gdt - ap_trampoline_start)

/* Parameter block, filled by the BSP (offsets exported below). */
.balign 8
ap_param_cr3:   .quad 0
ap_param_stack: .quad 0
ap_param_entry: .quad 0
ap_param_cpu:   .quad 0
ap_param_efer:  .quad 0
.global ap_trampoline_end
ap_trampoline_end:

