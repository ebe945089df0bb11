/*
 * Interrupt and exception entry stubs (AT&T syntax).
 *
 * Every stub makes the stack look the same -- an error code (the CPU's, or 0
 * for vectors that push none, SDM Vol.3A 7.13 "Error Code") and the vector --
 * then saves all general-purpose registers and calls
 * interrupt_dispatch(&mut TrapFrame). The layout must match TrapFrame in
 * idt.rs.
 */

.macro STUB_NOERR vec
    .balign 16
    .global isr_stub_\vec
isr_stub_\vec:
    pushq $0
    pushq $\vec
    jmp isr_common
.endm

.macro STUB_ERR vec
    .balign 16
    .global isr_stub_\vec
isr_stub_\vec:
    pushq $\vec
    jmp isr_common
.endm

.section .text.isr, "ax"
.code64
STUB_NOERR 0
STUB_NOERR 1
STUB_NOERR 2
STUB_NOERR 3
STUB_NOERR 4
STUB_NOERR 5
STUB_NOERR 6
STUB_NOERR 7
STUB_ERR   8
STUB_NOERR 9
STUB_ERR   10
STUB_ERR   11
STUB_ERR   12
STUB_ERR   13
STUB_ERR   14
STUB_NOERR 15
STUB_NOERR 16
STUB_ERR   17
STUB_NOERR 18
STUB_NOERR 19
STUB_NOERR 20
STUB_ERR   21
STUB_NOERR 22
STUB_NOERR 23
STUB_NOERR 24
STUB_NOERR 25
STUB_NOERR 26
STUB_NOERR 27
STUB_NOERR 28
STUB_ERR   29
STUB_ERR   30
STUB_NOERR 31
/* Vectors 32..255: external interrupts (device vectors belong to dom0,
 * 0xF0 and above to the hypervisor). Every stub is 16 bytes apart, so the
 * stub of vector V is at isr_stub_0 + 16 * V. */
.set vec, 32
.rept 224
    .balign 16
    pushq $0
    pushq $vec
    jmp isr_common
    .set vec, vec + 1
.endr

isr_common:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, %rdi
    /* Align the stack for the call; keep the old value in a callee-saved register. */
    movq %rsp, %rbx
    andq $-16, %rsp
    cld
    callq interrupt_dispatch
    movq %rbx, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp              /* vector and error code */
    iretq
