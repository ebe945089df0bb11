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
        mov     $stack_top, %esp
        mov     $hello, %esi
        call    puts
        xor     %edi, %edi              /* tick counter */
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
        mov     $tick, %esi
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

        .bss
        .balign 16
        .skip 4096
stack_top:
