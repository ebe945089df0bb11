/*
 * tiny-pvh: the smallest guest that shows a domain's lifecycle. An ELF with
 * a Xen PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY, like Linux's vmlinux), so
 * that `xl-rs create` loads it the way it loads a kernel. It runs in 32-bit
 * protected mode with paging off, as the PVH boot ABI starts it, and
 *   - prints "OXEN-DOMU: hello from domain" on its 16550 console (COM1),
 *   - then "OXEN-DOMU: tick N" every 2^24 iterations of an empty loop
 *     (about half a second of emulated time),
 *   - and powers itself off (ACPI PM1a_CNT at 0x604: SLP_TYP 5 | SLP_EN)
 *     when it reads a 'q' from its console (looked at once per tick).
 * With a command line starting "triple-fault" (xl.cfg `extra`, passed in
 * the hvm_start_info whose address the PVH entry gets in EBX: field
 * cmdline_paddr at offset 24), it prints "OXEN-DOMU: triple-faulting now"
 * after two ticks instead and triple-faults: with an IDT of limit 0, INT3
 * raises #GP, whose delivery raises #DF, whose delivery fails: a shutdown
 * (SDM Vol. 3A §7.15, "Interrupt 8—Double Fault Exception"), which VT-x
 * turns into a triple-fault VM exit (SDM Vol. 3C §27.2, basic reason 2).
 * With "hypercalls", it issues every operation of the hypercall ABI from
 * its kernel mode (CPL 0) with VMCALL (operation in EAX, arguments in EDI,
 * ESI, EDX: domain 0 where an operation takes a domain, a page of its own
 * where it takes an address), prints "OXEN-DOMU: hypercall 0000NNNN ->
 * SSSSSSSS" (the status the hypervisor put in EAX, hexadecimal) for each,
 * then "OXEN-DOMU: hypercalls done", and powers itself off.
 * Built by xtask with gcc/ld (no libc).
 */
        .section .note.Xen, "a"
        .balign 4
        .long 4                 /* name size: "Xen\0" */
        .long 4                 /* descriptor size */
        .long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
        .asciz "Xen"
        .long pvh_start

        .text
        .code32
        .globl pvh_start
pvh_start:
        cli
        cld
        mov     $stack_top, %esp
        mov     $hello, %esi
        call    puts
        /* The command line: "triple-fault..."? (its high half must be 0:
           paging is off, only the low 4 GiB are reachable). */
        mov     24(%ebx), %esi
        mov     28(%ebx), %eax
        or      %eax, %eax
        jnz     0f
        test    %esi, %esi
        jz      0f
        mov     %esi, %edx
        mov     $mode, %edi
        mov     $12, %ecx               /* strlen("triple-fault") */
        repe cmpsb
        jne     10f
        movb    $1, crash_mode
        jmp     0f
10:     mov     %edx, %esi
        mov     $hc_mode, %edi
        mov     $10, %ecx               /* strlen("hypercalls") */
        repe cmpsb
        je      hypercalls
0:      xor     %edi, %edi              /* tick counter */
1:      mov     $0x1000000, %ecx        /* busy work: no exits */
2:      dec     %ecx
        jnz     2b
        /* A byte from the console? (LSR bit 0: data ready.) Port I/O exits
           to the hypervisor, so it is looked at once per tick only. */
3:      mov     $0x3fd, %dx
        in      %dx, %al
        test    $1, %al
        jz      4f
        mov     $0x3f8, %dx
        in      %dx, %al
        cmp     $'q', %al
        je      poweroff
        jmp     3b
4:      inc     %edi
        cmpb    $0, crash_mode
        je      8f
        cmp     $3, %edi
        je      triple_fault
8:      mov     $tick, %esi
        call    puts
        mov     %edi, %eax
        call    putdec
        mov     $'\n', %al
        call    putc
        jmp     1b

poweroff:
        mov     $bye, %esi
        call    puts
        mov     $0x604, %dx
        mov     $((5 << 10) | (1 << 13)), %ax
        out     %ax, %dx
5:      hlt
        jmp     5b

triple_fault:
        mov     $fault, %esi
        call    puts
        lidt    null_idt
        int3
9:      hlt                             /* not reached */
        jmp     9b

/* Every operation of the ABI, from CPL 0: each must be refused. */
hypercalls:
        mov     $hc_table, %ebp
11:     mov     (%ebp), %eax            /* the operation; 0 ends the table */
        test    %eax, %eax
        jz      12f
        mov     4(%ebp), %edi
        mov     8(%ebp), %esi
        mov     $16, %edx
        push    %eax
        vmcall
        mov     %eax, %ebx              /* the status */
        mov     $hc_line, %esi
        call    puts
        pop     %eax
        call    puthex
        mov     $hc_arrow, %esi
        call    puts
        mov     %ebx, %eax
        call    puthex
        mov     $'\n', %al
        call    putc
        add     $12, %ebp
        jmp     11b
12:     mov     $hc_done, %esi
        call    puts
        jmp     poweroff

/* puthex: EAX as 8 hexadecimal digits (keeps EBX and EBP). */
puthex:
        push    %ebx
        mov     %eax, %ebx
        mov     $8, %ecx
13:     rol     $4, %ebx
        mov     %ebx, %eax
        and     $0xf, %eax
        mov     hexdigits(%eax), %al
        push    %ecx
        call    putc
        pop     %ecx
        dec     %ecx
        jnz     13b
        pop     %ebx
        ret

/* putc: AL to COM1's transmit register (the emulated UART never fills). */
putc:
        mov     $0x3f8, %dx
        out     %al, %dx
        ret

/* puts: the NUL-terminated string at ESI. */
puts:
        lodsb
        test    %al, %al
        jz      5f
        call    putc
        jmp     puts
5:      ret

/* putdec: EAX in decimal. */
putdec:
        mov     $10, %ebx
        xor     %ecx, %ecx
6:      xor     %edx, %edx
        div     %ebx
        push    %edx
        inc     %ecx
        test    %eax, %eax
        jnz     6b
7:      pop     %eax
        add     $'0', %al
        push    %ecx
        call    putc
        pop     %ecx
        dec     %ecx
        jnz     7b
        ret

        .section .rodata
hello:  .asciz "OXEN-DOMU: hello from domain\n"
tick:   .asciz "OXEN-DOMU: tick "
bye:    .asciz "OXEN-DOMU: powering off\n"
fault:  .asciz "OXEN-DOMU: triple-faulting now\n"
mode:   .ascii "triple-fault"
hc_mode: .ascii "hypercalls"
hc_line: .asciz "OXEN-DOMU: hypercall "
hc_arrow: .asciz " -> "
hc_done: .asciz "OXEN-DOMU: hypercalls done\n"
hexdigits: .ascii "0123456789abcdef"
        /* operation, EDI, ESI (dom0-abi/src/hypercall.rs, enum Op); the
           page at 0x180000 is the guest's own (its RAM starts at 0). */
        .balign 4
hc_table:
        .long   0x0100, 0x180000, 0     /* VERSION (arguments at EDI) */
        .long   0x0101, 0x180000, 4096  /* HV_INFO */
        .long   0x0102, 0x180000, 0     /* LOG_READ */
        .long   0x0200, 0x180000, 0     /* DOMAIN_LIST */
        .long   0x0201, 0, 0x180000     /* DOMAIN_INFO of dom0 */
        .long   0x0300, 0x180000, 0     /* DOMAIN_CREATE */
        .long   0x0301, 0, 0            /* DOMAIN_DESTROY of dom0 */
        .long   0x0302, 0, 0            /* DOMAIN_PAUSE of dom0 */
        .long   0x0303, 0, 0            /* DOMAIN_UNPAUSE */
        .long   0x0304, 0, 0            /* DOMAIN_SHUTDOWN of dom0 */
        .long   0x0400, 0, 0x180000     /* DOMAIN_COPY_IN */
        .long   0x0500, 0, 0            /* VCPU_SET_ENTRY */
        .long   0x0600, 0, 0x180000     /* CONSOLE_READ */
        .long   0x0601, 0, 0x180000     /* CONSOLE_WRITE */
        .long   0, 0, 0
        .balign 8
null_idt:
        .word   0                       /* limit 0: no gate at all */
        .long   0

        .bss
crash_mode:
        .byte   0
        .balign 16
        .skip 4096
stack_top:
