/*
 * VM entry and exit (AT&T syntax).
 *
 * u64 vmx_run(GuestRegs *regs, u64 launched)
 *   Saves the host's callee-saved registers, records RSP in HOST_RSP, loads
 *   the guest's general-purpose registers and executes VMLAUNCH (first run)
 *   or VMRESUME. Returns 0 after a VM exit (guest registers stored back into
 *   *regs) or 1 when the VM entry itself failed (SDM Vol.3C §27.2-27.3:
 *   VMfailInvalid/VMfailValid leave us at the next instruction).
 *
 * vmx_exit is HOST_RIP: the CPU arrives with RSP = HOST_RSP, i.e. pointing at
 * the saved `regs` pointer, and with host CR3/segments/GS base restored from
 * the VMCS host-state area (SDM §28.5 "Loading Host State").
 *
 * GuestRegs layout (offsets): rax 0, rbx 8, rcx 16, rdx 24, rsi 32, rdi 40,
 * rbp 48, r8 56 ... r15 112.
 */

.set HOST_RSP_FIELD, 0x6C14

.section .text.vmrun, "ax"
.code64
.global vmx_run
vmx_run:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    pushq %rdi                      /* regs pointer, found again at exit */

    movq $HOST_RSP_FIELD, %rax
    vmwrite %rsp, %rax
    jbe 2f

    cmpq $0, %rsi                   /* flags survive the movs below */
    movq 0(%rdi), %rax
    movq 8(%rdi), %rbx
    movq 16(%rdi), %rcx
    movq 24(%rdi), %rdx
    movq 32(%rdi), %rsi
    movq 48(%rdi), %rbp
    movq 56(%rdi), %r8
    movq 64(%rdi), %r9
    movq 72(%rdi), %r10
    movq 80(%rdi), %r11
    movq 88(%rdi), %r12
    movq 96(%rdi), %r13
    movq 104(%rdi), %r14
    movq 112(%rdi), %r15
    movq 40(%rdi), %rdi
    jne 1f
    vmlaunch
    jmp 2f
1:  vmresume
2:  /* VM entry failed. */
    popq %rdi
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    movl $1, %eax
    retq

.global vmx_exit
vmx_exit:
    xchgq %rdi, (%rsp)              /* rdi = regs, slot = guest rdi */
    movq %rax, 0(%rdi)
    movq %rbx, 8(%rdi)
    movq %rcx, 16(%rdi)
    movq %rdx, 24(%rdi)
    movq %rsi, 32(%rdi)
    movq %rbp, 48(%rdi)
    movq %r8, 56(%rdi)
    movq %r9, 64(%rdi)
    movq %r10, 72(%rdi)
    movq %r11, 80(%rdi)
    movq %r12, 88(%rdi)
    movq %r13, 96(%rdi)
    movq %r14, 104(%rdi)
    movq %r15, 112(%rdi)
    popq %rax                       /* guest rdi */
    movq %rax, 40(%rdi)
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    xorl %eax, %eax
    retq
