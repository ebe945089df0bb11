/*
 * Multiboot2 header and the 32-bit to 64-bit entry (AT&T syntax).
 *
 * GRUB enters _start32 in 32-bit protected mode with paging off,
 * EAX = 0x36d76289 and EBX = physical address of the boot information
 * (Multiboot2 spec section 3.3, "I386 machine state").
 *
 * We build page tables that map the first 4 GiB twice -- identity, and the
 * top 2 GiB of the address space onto physical 0..2 GiB (the kernel code
 * model) -- enable long mode (SDM Vol.3A 10.8.5 "Initializing IA-32e Mode")
 * and jump to Rust's boot_main(magic, info) in the higher half.
 */

.set KERNEL_VMA,   0xFFFFFFFF80000000
.set MB2_MAGIC,    0xE85250D6
.set MB2_ARCH,     0
.set COM1,         0x3F8

/* --- Multiboot2 header (spec section 3.1) --- */
.section .multiboot2_header, "a"
.balign 8
mb2_header_start:
    .long MB2_MAGIC
    .long MB2_ARCH
    .long mb2_header_end - mb2_header_start
    .long 0x100000000 - (MB2_MAGIC + MB2_ARCH + (mb2_header_end - mb2_header_start))
    /* End tag (type 0, flags 0, size 8). */
    .balign 8
    .short 0
    .short 0
    .long 8
mb2_header_end:

/* --- Boot-time data: page tables and the BSP stack, identity addressed --- */
.section .boot.bss, "aw", @nobits
.balign 4096
.global boot_pml4
boot_pml4:      .skip 4096
boot_pdpt_low:  .skip 4096
boot_pdpt_high: .skip 4096
boot_pd:        .skip 4096 * 4
.global boot_stack_bottom
boot_stack_bottom:
    .skip 65536
.global boot_stack_top
boot_stack_top:

.section .boot.data, "aw"
.balign 16
boot_gdt:
    .quad 0                     /* null */
    .quad 0x00AF9A000000FFFF    /* 0x08: 64-bit code, DPL 0 */
    .quad 0x00CF92000000FFFF    /* 0x10: data, DPL 0 */
boot_gdt_end:
boot_gdt_ptr:
    .short boot_gdt_end - boot_gdt - 1
    .long boot_gdt

msg_no_long_mode:
    .asciz "Oxen: FATAL: this CPU has no 64-bit long mode; halting.\r\n"

/* --- 32-bit entry --- */
.section .boot.text, "ax"
.code32
.global _start32
_start32:
    cli
    cld
    movl $boot_stack_top, %esp
    movl %eax, %edi             /* multiboot2 magic -> first argument  */
    movl %ebx, %esi             /* boot information -> second argument */

    /* Long mode present? CPUID 0x80000001 EDX bit 29 (SDM Vol.2A CPUID). */
    movl $0x80000000, %eax
    cpuid
    cmpl $0x80000001, %eax
    jb no_long_mode
    movl $0x80000001, %eax
    cpuid
    testl $(1 << 29), %edx
    jz no_long_mode
    movl %edx, %ebp             /* keep: bit 20 = NX available */

    /* Four page directories of 2 MiB pages identity-map 0..4 GiB. */
    movl $boot_pd, %ebx
    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax             /* present, writable, page size */
    movl %eax, (%ebx, %ecx, 8)
    movl %ecx, %eax
    shrl $11, %eax              /* high dword: bits 32+ of (ecx << 21) */
    movl %eax, 4(%ebx, %ecx, 8)
    incl %ecx
    cmpl $2048, %ecx
    jne 1b

    /* PDPT (low): entries 0..3 -> the four directories. */
    movl $boot_pdpt_low, %ebx
    movl $boot_pd, %eax
    orl $0x3, %eax
    movl %eax, 0(%ebx)
    addl $4096, %eax
    movl %eax, 8(%ebx)
    addl $4096, %eax
    movl %eax, 16(%ebx)
    addl $4096, %eax
    movl %eax, 24(%ebx)

    /* PDPT (high): entries 510, 511 -> physical 0..1 GiB and 1..2 GiB. */
    movl $boot_pdpt_high, %ebx
    movl $boot_pd, %eax
    orl $0x3, %eax
    movl %eax, 510*8(%ebx)
    addl $4096, %eax
    movl %eax, 511*8(%ebx)

    /* PML4: entry 0 (identity) and 511 (higher half). */
    movl $boot_pml4, %ebx
    movl $boot_pdpt_low, %eax
    orl $0x3, %eax
    movl %eax, 0(%ebx)
    movl $boot_pdpt_high, %eax
    orl $0x3, %eax
    movl %eax, 511*8(%ebx)

    /* CR4.PAE, CR3, EFER.LME (+NXE when available), CR0.PG. */
    movl %cr4, %eax
    orl $(1 << 5), %eax
    movl %eax, %cr4
    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx
    rdmsr
    orl $(1 << 8), %eax
    testl $(1 << 20), %ebp
    jz 2f
    orl $(1 << 11), %eax
2:  wrmsr
    movl %cr0, %eax
    orl $0x80000001, %eax
    movl %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $start64_low

no_long_mode:
    movl $msg_no_long_mode, %esi
3:  movb (%esi), %al
    testb %al, %al
    jz 4f
    movw $COM1, %dx
    outb %al, %dx
    incl %esi
    jmp 3b
4:  hlt
    jmp 4b

.code64
start64_low:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    /* Zero-extend the two arguments; keep the identity-mapped stack. */
    movl %edi, %edi
    movl %esi, %esi
    movabsq $boot_main, %rax
    xorl %ebp, %ebp
    callq *%rax
5:  cli
    hlt
    jmp 5b
