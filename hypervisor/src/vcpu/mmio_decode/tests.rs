//! Host tests of the MMIO instruction decoder: the byte sequences compilers
//! emit for Linux's MMIO accessors, register merging, refusals, and random
//! bytes.

use proptest::prelude::*;

use super::*;
use Gpr::*;

fn d(bytes: &[u8]) -> Decoded {
    decode(bytes, CpuMode::Long64).unwrap_or_else(|e| panic!("{bytes:02x?}: {e}"))
}

fn err(bytes: &[u8]) -> DecodeError {
    decode(bytes, CpuMode::Long64).unwrap_err()
}

const fn low(gpr: Gpr, bytes: u8) -> Reg {
    Reg::Low { gpr, bytes }
}

fn read(dest: Reg) -> Kind {
    Kind::Read {
        dest,
        extend: Extend::None,
    }
}

fn write(src: Reg) -> Kind {
    Kind::Write {
        src: Operand::Reg(src),
    }
}

fn imm(value: u64) -> Kind {
    Kind::Write {
        src: Operand::Imm(value),
    }
}

fn at(base: Gpr) -> MemOperand {
    mem(Base::Gpr(base), None, 0)
}

fn mem(base: Base, index: Option<(Gpr, u8)>, disp: i32) -> MemOperand {
    MemOperand {
        segment: None,
        base,
        index,
        disp,
        addr_bytes: 8,
    }
}

/// `(len, size, kind, mem)` of a decode.
fn parts(x: Decoded) -> (u8, u8, Kind, MemOperand) {
    (x.len, x.size, x.kind, x.mem)
}

#[test]
fn linux_readl_writel_forms() {
    // mov (%rdi),%eax: readl(addr).
    assert_eq!(parts(d(&[0x8B, 0x07])), (2, 4, read(low(Rax, 4)), at(Rdi)));
    // mov %esi,(%rdi): writel(val, addr).
    assert_eq!(parts(d(&[0x89, 0x37])), (2, 4, write(low(Rsi, 4)), at(Rdi)));
    // mov 0x10(%rax),%eax: readl(base + 0x10).
    assert_eq!(
        parts(d(&[0x8B, 0x40, 0x10])),
        (3, 4, read(low(Rax, 4)), mem(Base::Gpr(Rax), None, 0x10))
    );
    // mov %eax,(%r12): REX.B and a SIB byte with no index.
    assert_eq!(
        parts(d(&[0x41, 0x89, 0x04, 0x24])),
        (4, 4, write(low(Rax, 4)), at(R12))
    );
    // mov 0x100(%rdi),%ecx: disp32.
    assert_eq!(
        parts(d(&[0x8B, 0x8F, 0x00, 0x01, 0x00, 0x00])),
        (6, 4, read(low(Rcx, 4)), mem(Base::Gpr(Rdi), None, 0x100))
    );
    // mov %edx,-0x8(%rbp).
    assert_eq!(
        parts(d(&[0x89, 0x55, 0xF8])),
        (3, 4, write(low(Rdx, 4)), mem(Base::Gpr(Rbp), None, -8))
    );
}

#[test]
fn linux_readq_writeq_forms() {
    // mov (%rdx),%rax: readq.
    assert_eq!(
        parts(d(&[0x48, 0x8B, 0x02])),
        (3, 8, read(low(Rax, 8)), at(Rdx))
    );
    // mov %rdx,(%rax): writeq.
    assert_eq!(
        parts(d(&[0x48, 0x89, 0x10])),
        (3, 8, write(low(Rdx, 8)), at(Rax))
    );
    // mov (%rax),%r8: REX.W + REX.R.
    assert_eq!(
        parts(d(&[0x4C, 0x8B, 0x00])),
        (3, 8, read(low(R8, 8)), at(Rax))
    );
    // mov %r15,0x18(%r13): REX.WRB, r13 as a base needs mod 01.
    assert_eq!(
        parts(d(&[0x4D, 0x89, 0x7D, 0x18])),
        (4, 8, write(low(R15, 8)), mem(Base::Gpr(R13), None, 0x18))
    );
}

#[test]
fn linux_byte_and_word_forms() {
    // mov %dl,(%rax): writeb.
    assert_eq!(parts(d(&[0x88, 0x10])), (2, 1, write(low(Rdx, 1)), at(Rax)));
    // mov %dx,(%rax): writew.
    assert_eq!(
        parts(d(&[0x66, 0x89, 0x10])),
        (3, 2, write(low(Rdx, 2)), at(Rax))
    );
    // movzwl (%rax),%eax: readw into an int.
    assert_eq!(
        parts(d(&[0x0F, 0xB7, 0x00])),
        (
            3,
            2,
            Kind::Read {
                dest: low(Rax, 4),
                extend: Extend::Zero
            },
            at(Rax)
        )
    );
    // movzbl 0x4(%rdi),%eax: readb into an int.
    assert_eq!(
        parts(d(&[0x0F, 0xB6, 0x47, 0x04])),
        (
            4,
            1,
            Kind::Read {
                dest: low(Rax, 4),
                extend: Extend::Zero
            },
            mem(Base::Gpr(Rdi), None, 4)
        )
    );
    // mov (%rdi),%al and mov (%rdi),%ax.
    assert_eq!(parts(d(&[0x8A, 0x07])), (2, 1, read(low(Rax, 1)), at(Rdi)));
    assert_eq!(
        parts(d(&[0x66, 0x8B, 0x07])),
        (3, 2, read(low(Rax, 2)), at(Rdi))
    );
    // mov %r9b,(%r8).
    assert_eq!(
        parts(d(&[0x45, 0x88, 0x08])),
        (3, 1, write(low(R9, 1)), at(R8))
    );
    // movzbq (%rax),%rax, movswl (%rsi),%ecx, movsbq (%rdi),%r10.
    assert_eq!(
        d(&[0x48, 0x0F, 0xB6, 0x00]).kind,
        Kind::Read {
            dest: low(Rax, 8),
            extend: Extend::Zero
        }
    );
    let movsx = d(&[0x0F, 0xBF, 0x0E]);
    assert_eq!((movsx.len, movsx.size), (3, 2));
    assert_eq!(
        movsx.kind,
        Kind::Read {
            dest: low(Rcx, 4),
            extend: Extend::Sign
        }
    );
    let movsx = d(&[0x4C, 0x0F, 0xBE, 0x17]);
    assert_eq!((movsx.len, movsx.size), (4, 1));
    assert_eq!(
        movsx.kind,
        Kind::Read {
            dest: low(R10, 8),
            extend: Extend::Sign
        }
    );
}

#[test]
fn immediate_stores() {
    // movl $0x0,(%rax).
    assert_eq!(parts(d(&[0xC7, 0x00, 0, 0, 0, 0])), (6, 4, imm(0), at(Rax)));
    // movl $0x80000001,0x20(%rdi).
    assert_eq!(
        parts(d(&[0xC7, 0x47, 0x20, 0x01, 0x00, 0x00, 0x80])),
        (7, 4, imm(0x8000_0001), mem(Base::Gpr(Rdi), None, 0x20))
    );
    // movb $0xff,(%rax); movw $0x1234,(%rax).
    assert_eq!(parts(d(&[0xC6, 0x00, 0xFF])), (3, 1, imm(0xFF), at(Rax)));
    assert_eq!(
        parts(d(&[0x66, 0xC7, 0x00, 0x34, 0x12])),
        (5, 2, imm(0x1234), at(Rax))
    );
    // movq $-1,(%rax): imm32 sign-extended to 64 bits.
    assert_eq!(
        parts(d(&[0x48, 0xC7, 0x00, 0xFF, 0xFF, 0xFF, 0xFF])),
        (7, 8, imm(u64::MAX), at(Rax))
    );
    // movq $0x7fffffff,(%rax): no sign to extend.
    assert_eq!(
        d(&[0x48, 0xC7, 0x00, 0xFF, 0xFF, 0xFF, 0x7F]).kind,
        imm(0x7FFF_FFFF)
    );
}

#[test]
fn sib_forms() {
    // mov %eax,(%rdx,%rcx,4).
    assert_eq!(
        parts(d(&[0x89, 0x04, 0x8A])),
        (
            3,
            4,
            write(low(Rax, 4)),
            mem(Base::Gpr(Rdx), Some((Rcx, 4)), 0)
        )
    );
    // mov (%rax,%r13,4),%eax: REX.X.
    assert_eq!(
        parts(d(&[0x42, 0x8B, 0x04, 0xA8])),
        (
            4,
            4,
            read(low(Rax, 4)),
            mem(Base::Gpr(Rax), Some((R13, 4)), 0)
        )
    );
    // mov %eax,(%r12,%r9,8): REX.XB.
    assert_eq!(
        parts(d(&[0x43, 0x89, 0x04, 0xCC])),
        (
            4,
            4,
            write(low(Rax, 4)),
            mem(Base::Gpr(R12), Some((R9, 8)), 0)
        )
    );
    // mov 0x8(%rsp),%eax.
    assert_eq!(
        parts(d(&[0x8B, 0x44, 0x24, 0x08])).3,
        mem(Base::Gpr(Rsp), None, 8)
    );
    // mov 0x1000(%rbx,%rsi,2),%edi: SIB + disp32.
    assert_eq!(
        parts(d(&[0x8B, 0xBC, 0x73, 0x00, 0x10, 0x00, 0x00])),
        (
            7,
            4,
            read(low(Rdi, 4)),
            mem(Base::Gpr(Rbx), Some((Rsi, 2)), 0x1000)
        )
    );
    // R12 is a valid index with REX.X (index 100 + X).
    assert_eq!(d(&[0x42, 0x8B, 0x04, 0x20]).mem.index, Some((R12, 1)));
}

#[test]
fn absolute_and_rip_relative_forms() {
    // mov 0xffffffffff5fd000,%eax: a fixmap address, SIB with no base and
    // no index.
    assert_eq!(
        parts(d(&[0x8B, 0x04, 0x25, 0x00, 0xD0, 0x5F, 0xFF])),
        (
            7,
            4,
            read(low(Rax, 4)),
            mem(Base::None, None, 0xFF5F_D000_u32 as i32)
        )
    );
    // No base even with REX.B (it would be r13).
    assert_eq!(
        d(&[0x41, 0x8B, 0x04, 0x25, 0, 0x10, 0, 0]).mem,
        mem(Base::None, None, 0x1000)
    );
    // But r13 with disp8 is a base.
    assert_eq!(d(&[0x41, 0x8B, 0x45, 0x00]).mem, at(R13));
    // mov 0x10(%rip),%eax; REX.B does not change RIP-relative.
    assert_eq!(
        parts(d(&[0x8B, 0x05, 0x10, 0, 0, 0])),
        (6, 4, read(low(Rax, 4)), mem(Base::Rip, None, 0x10))
    );
    assert_eq!(d(&[0x41, 0x8B, 0x05, 0x10, 0, 0, 0]).mem.base, Base::Rip);
    // movl $0x1,-0x8(%rip): displacement before the immediate.
    let x = d(&[0xC7, 0x05, 0xF8, 0xFF, 0xFF, 0xFF, 0x01, 0, 0, 0]);
    assert_eq!(parts(x), (10, 4, imm(1), mem(Base::Rip, None, -8)));
    // Relative to the end of the whole instruction, immediate included.
    let regs = [0u64; 16];
    assert_eq!(
        x.mem.effective_address(&regs, 0x1000 + u64::from(x.len)),
        0x1002
    );
}

#[test]
fn effective_addresses() {
    let mut regs = [0u64; 16];
    regs[Rdx.index()] = 0xFFFF_C900_0000_0000;
    regs[Rcx.index()] = 3;
    let x = d(&[0x89, 0x44, 0x8A, 0xF0]); // mov %eax,-0x10(%rdx,%rcx,4)
    assert_eq!(
        x.mem.effective_address(&regs, 0),
        0xFFFF_C900_0000_0000 + 12 - 16
    );
    // mov (%edi),%eax: 32-bit addressing wraps at 4 GiB.
    regs[Rdi.index()] = 0x1_FFFF_FFFF;
    let x = d(&[0x67, 0x8B, 0x47, 0x02]);
    assert_eq!((x.len, x.mem.addr_bytes), (4, 4));
    assert_eq!(x.mem.effective_address(&regs, 0), 1);
    // Absolute sign-extended disp32.
    let x = d(&[0x8B, 0x04, 0x25, 0x00, 0xD0, 0x5F, 0xFF]);
    assert_eq!(x.mem.effective_address(&regs, 0), 0xFFFF_FFFF_FF5F_D000);
}

#[test]
fn high_byte_registers() {
    // mov %ah,0x1(%rax); mov 0x4(%rax),%bh.
    assert_eq!(d(&[0x88, 0x60, 0x01]).kind, write(Reg::HighByte(Rax)));
    assert_eq!(d(&[0x8A, 0x78, 0x04]).kind, read(Reg::HighByte(Rbx)));
    // With any REX, 4-7 are SPL, BPL, SIL, DIL.
    assert_eq!(d(&[0x40, 0x88, 0x60, 0x01]).kind, write(low(Rsp, 1)));
    assert_eq!(d(&[0x40, 0x8A, 0x78, 0x04]).kind, read(low(Rdi, 1)));
    // Only byte forms have them: 89 /4 is ESP.
    assert_eq!(d(&[0x89, 0x60, 0x01]).kind, write(low(Rsp, 4)));
}

#[test]
fn prefixes_are_handled() {
    // Segment overrides are accepted and reported.
    let x = d(&[0x3E, 0x8B, 0x07]);
    assert_eq!((x.len, x.mem.segment), (3, Some(Segment::Ds)));
    let x = d(&[0x65, 0x8B, 0x04, 0x25, 0x28, 0, 0, 0]);
    assert_eq!((x.len, x.mem.segment), (8, Some(Segment::Gs)));
    for (p, s) in [
        (0x26, Segment::Es),
        (0x2E, Segment::Cs),
        (0x36, Segment::Ss),
        (0x64, Segment::Fs),
    ] {
        assert_eq!(d(&[p, 0x89, 0x07]).mem.segment, Some(s));
    }
    // REX.W wins over 66.
    assert_eq!(d(&[0x66, 0x48, 0x89, 0x10]).size, 8);
    // A REX before a legacy prefix is ignored: a 16-bit store of DX.
    let x = d(&[0x48, 0x66, 0x89, 0x10]);
    assert_eq!((x.len, x.size, x.kind), (4, 2, write(low(Rdx, 2))));
    // The last of two REX prefixes counts.
    assert_eq!(d(&[0x4C, 0x41, 0x89, 0x00]).kind, write(low(Rax, 4)));
    // REX.W means nothing to byte moves.
    assert_eq!(d(&[0x48, 0x88, 0x10]).size, 1);
    // 66 with MOVZX: a 16-bit destination.
    assert_eq!(
        d(&[0x66, 0x0F, 0xB6, 0x00]).kind,
        Kind::Read {
            dest: low(Rax, 2),
            extend: Extend::Zero
        }
    );
}

#[test]
fn refused_prefixes_and_opcodes() {
    let op = |byte| Opcode {
        escape_0f: false,
        byte,
    };
    let op0f = |byte| Opcode {
        escape_0f: true,
        byte,
    };
    assert_eq!(err(&[0xF3, 0xA5]), DecodeError::Prefix(0xF3)); // rep movsl
    assert_eq!(err(&[0xF3, 0xAB]), DecodeError::Prefix(0xF3)); // rep stosl
    assert_eq!(err(&[0xF2, 0x8B, 0x07]), DecodeError::Prefix(0xF2));
    assert_eq!(err(&[0xF0, 0x89, 0x07]), DecodeError::Prefix(0xF0));
    assert_eq!(err(&[0xA5]), DecodeError::Opcode(op(0xA5))); // movsl
    assert_eq!(
        err(&[0xA1, 0, 0, 0, 0, 0, 0, 0, 0]),
        DecodeError::Opcode(op(0xA1))
    );
    assert_eq!(err(&[0x01, 0x07]), DecodeError::Opcode(op(0x01))); // add %eax,(%rdi)
    assert_eq!(err(&[0x85, 0x07]), DecodeError::Opcode(op(0x85))); // test
    assert_eq!(err(&[0x0F, 0x05]), DecodeError::Opcode(op0f(0x05))); // syscall
    assert_eq!(
        err(&[0x0F, 0x38, 0xF0, 0x07]),
        DecodeError::Opcode(op0f(0x38))
    ); // movbe
    assert_eq!(
        err(&[0xC5, 0xF9, 0x7E, 0x07]),
        DecodeError::Opcode(op(0xC5))
    ); // vmovd
    assert_eq!(err(&[0x89, 0xC0]), DecodeError::RegisterOperand(op(0x89)));
    assert_eq!(
        err(&[0x0F, 0xB6, 0xC1]),
        DecodeError::RegisterOperand(op0f(0xB6))
    );
    assert_eq!(
        err(&[0xC7, 0x08, 0, 0, 0, 0]),
        DecodeError::OpcodeExtension {
            opcode: op(0xC7),
            reg: 1
        }
    );
    // xbegin (C7 F8) is C7 /7.
    assert_eq!(
        err(&[0xC7, 0xF8, 0, 0, 0, 0]),
        DecodeError::OpcodeExtension {
            opcode: op(0xC7),
            reg: 7
        }
    );
}

#[test]
fn truncated_and_overlong_input() {
    for bytes in [
        &[][..],
        &[0x8B],
        &[0x48],
        &[0x66, 0x3E],
        &[0x0F],
        &[0x0F, 0xB7],
        &[0x8B, 0x04],
        &[0x8B, 0x40],
        &[0x8B, 0x80, 0x00, 0x00],
        &[0x8B, 0x05, 0x00, 0x00, 0x00],
        &[0xC7, 0x00, 0x00, 0x00, 0x00],
        &[0x66, 0xC7, 0x00, 0x34],
    ] {
        assert_eq!(
            decode(bytes, CpuMode::Long64),
            Err(DecodeError::Truncated),
            "{bytes:02x?}"
        );
    }
    // 13 prefixes and a two-byte MOV: exactly 15 bytes.
    let mut bytes = vec![0x3E; 13];
    bytes.extend([0x89, 0x07]);
    assert_eq!(d(&bytes).len, 15);
    // One more prefix: 16 bytes, #GP on hardware.
    bytes.insert(0, 0x66);
    assert_eq!(decode(&bytes, CpuMode::Long64), Err(DecodeError::TooLong));
    // Only the first 15 bytes are looked at, so a short input does not
    // hide the limit either.
    bytes.truncate(15);
    assert_eq!(decode(&bytes, CpuMode::Long64), Err(DecodeError::TooLong));
    // Bytes after the instruction are not part of it.
    assert_eq!(d(&[0x8B, 0x07, 0xC3, 0xCC]).len, 2);
}

#[test]
fn protected_mode_32() {
    let p32 = |bytes: &[u8]| decode(bytes, CpuMode::Protected32);
    let x = p32(&[0x8B, 0x07]).unwrap();
    assert_eq!((x.len, x.size, x.mem.addr_bytes), (2, 4, 4));
    // ModRM 00/101 is an absolute address, not RIP-relative.
    let x = p32(&[0x89, 0x05, 0x00, 0x00, 0xC0, 0xFE]).unwrap();
    assert_eq!(
        (x.len, x.mem.base, x.mem.disp),
        (6, Base::None, 0xFEC0_0000_u32 as i32)
    );
    // 40-4F are INC/DEC, not REX; without REX 4-7 are AH..BH.
    assert_eq!(
        p32(&[0x48, 0x8B, 0x07]),
        Err(DecodeError::Opcode(Opcode {
            escape_0f: false,
            byte: 0x48
        }))
    );
    assert_eq!(
        p32(&[0x88, 0x67, 0x01]).unwrap().kind,
        write(Reg::HighByte(Rax))
    );
    assert_eq!(p32(&[0x66, 0x89, 0x07]).unwrap().size, 2);
    // 16-bit addressing is refused.
    assert_eq!(p32(&[0x67, 0x8B, 0x07]), Err(DecodeError::Prefix(0x67)));
}

#[test]
fn read_results_merge_like_the_cpu() {
    const OLD: u64 = 0x1111_2222_3333_4444;
    let apply = |bytes: &[u8], value: u64| {
        let mut regs = [OLD; 16];
        d(bytes).apply_read(value, &mut regs);
        regs
    };
    // 32-bit: the upper half is zeroed.
    assert_eq!(apply(&[0x8B, 0x07], 0xDEAD_BEEF)[0], 0xDEAD_BEEF);
    // 64-bit: replaced.
    assert_eq!(
        apply(&[0x48, 0x8B, 0x07], 0x8000_0000_0000_0001)[0],
        0x8000_0000_0000_0001
    );
    // 16 and 8 bits: merged; extra bits of the device's value ignored.
    assert_eq!(
        apply(&[0x66, 0x8B, 0x07], 0xFFFF_ABCD)[0],
        0x1111_2222_3333_ABCD
    );
    assert_eq!(apply(&[0x8A, 0x07], 0x1CD)[0], 0x1111_2222_3333_44CD);
    // AH: bits 15:8, the rest kept.
    assert_eq!(apply(&[0x8A, 0x27], 0xAB)[0], 0x1111_2222_3333_AB44);
    // BH goes to RBX, not RDI.
    let regs = apply(&[0x8A, 0x3F], 0xAB);
    assert_eq!((regs[3], regs[7]), (0x1111_2222_3333_AB44, OLD));
    // SIL with a REX prefix.
    assert_eq!(apply(&[0x40, 0x8A, 0x37], 0xAB)[6], 0x1111_2222_3333_44AB);
    // R11D.
    let regs = apply(&[0x44, 0x8B, 0x1F], 0x5);
    assert_eq!((regs[11], regs[3]), (5, OLD));
    // MOVZX into 32 bits clears the upper half; into 16 bits merges.
    assert_eq!(apply(&[0x0F, 0xB6, 0x07], 0xFF80)[0], 0x80);
    assert_eq!(
        apply(&[0x66, 0x0F, 0xB6, 0x07], 0x80)[0],
        0x1111_2222_3333_0080
    );
    // MOVSX: sign-extended to the destination's width.
    assert_eq!(apply(&[0x0F, 0xBE, 0x07], 0x80)[0], 0xFFFF_FF80);
    assert_eq!(
        apply(&[0x48, 0x0F, 0xBF, 0x07], 0x8000)[0],
        0xFFFF_FFFF_FFFF_8000
    );
    assert_eq!(
        apply(&[0x66, 0x0F, 0xBE, 0x07], 0x7F)[0],
        0x1111_2222_3333_007F
    );
    // A write changes no register.
    assert_eq!(apply(&[0x89, 0x07], 0x1234), [OLD; 16]);
}

#[test]
fn write_values() {
    let mut regs = [0u64; 16];
    regs[Rax.index()] = 0x1234_5678_9ABC_DEF0;
    regs[Rsi.index()] = 0x1_2345_6789;
    let value = |bytes: &[u8]| d(bytes).write_value(&regs);
    assert_eq!(value(&[0x89, 0x37]), Some(0x2345_6789));
    assert_eq!(value(&[0x48, 0x89, 0x07]), Some(0x1234_5678_9ABC_DEF0));
    assert_eq!(value(&[0x66, 0x89, 0x07]), Some(0xDEF0));
    assert_eq!(value(&[0x88, 0x07]), Some(0xF0));
    assert_eq!(value(&[0x88, 0x27]), Some(0xDE)); // AH
    assert_eq!(value(&[0x40, 0x88, 0x37]), Some(0x89)); // SIL
    assert_eq!(
        value(&[0xC7, 0x07, 0x78, 0x56, 0x34, 0x12]),
        Some(0x1234_5678)
    );
    assert_eq!(value(&[0x8B, 0x07]), None);
}

#[test]
fn registers_and_errors_read_well() {
    assert_eq!(Reg::HighByte(Rcx).read(0xAB00), 0xAB);
    assert_eq!(low(R8, 2).read(0x1_2345), 0x2345);
    assert_eq!(Reg::HighByte(Rdx).bytes(), 1);
    assert_eq!(
        DecodeError::Opcode(Opcode {
            escape_0f: true,
            byte: 0x05
        })
        .to_string(),
        "opcode 0F 05 is not an MMIO move this emulates"
    );
    assert_eq!(
        DecodeError::OpcodeExtension {
            opcode: Opcode {
                escape_0f: false,
                byte: 0xC6
            },
            reg: 2
        }
        .to_string(),
        "opcode C6 /2 is not an MMIO move this emulates"
    );
    assert_eq!(
        DecodeError::Prefix(0xF3).to_string(),
        "prefix F3 is not emulated for MMIO"
    );
}

/// Checks one decode of arbitrary bytes: no panic, and a success is
/// 1..=15 bytes long, decodes the same from exactly its own bytes, and is
/// truncated one byte shorter.
fn check_any(bytes: &[u8], mode: CpuMode) -> Result<(), TestCaseError> {
    if let Ok(x) = decode(bytes, mode) {
        let len = usize::from(x.len);
        prop_assert!((1..=MAX_INSN_LEN).contains(&len) && len <= bytes.len());
        prop_assert!(matches!(x.size, 1 | 2 | 4 | 8));
        prop_assert_eq!(decode(&bytes[..len], mode), Ok(x));
        prop_assert_eq!(decode(&bytes[..len - 1], mode), Err(DecodeError::Truncated));
    }
    Ok(())
}

/// A supported instruction built from its parts, with its expected length.
fn instruction() -> impl Strategy<Value = (Vec<u8>, usize, u8)> {
    let prefix = prop::sample::select(vec![0x66u8, 0x67, 0x26, 0x2E, 0x36, 0x3E, 0x64, 0x65]);
    let opcodes: Vec<&'static [u8]> = vec![
        &[0x88],
        &[0x89],
        &[0x8A],
        &[0x8B],
        &[0xC6],
        &[0xC7],
        &[0x0F, 0xB6],
        &[0x0F, 0xB7],
        &[0x0F, 0xBE],
        &[0x0F, 0xBF],
    ];
    (
        prop::collection::vec(prefix, 0..=3),
        prop::option::of(0x40u8..=0x4F),
        prop::sample::select(opcodes),
        any::<u8>(),
        any::<u8>(),
        any::<[u8; 8]>(),
    )
        .prop_map(|(mut prefixes, rex, opcode, modrm, sib, tail)| {
            prefixes.sort_unstable();
            prefixes.dedup();
            let mut modrm = if modrm >> 6 == 3 { modrm & 0xBF } else { modrm };
            if opcode[0] >= 0xC6 && opcode.len() == 1 {
                modrm &= 0xC7;
            }
            let (md, rm) = (modrm >> 6, modrm & 7);
            let mut bytes = prefixes.clone();
            bytes.extend(rex);
            bytes.extend_from_slice(opcode);
            bytes.push(modrm);
            let mut disp = [0, 1, 4][usize::from(md)];
            if rm == 4 {
                bytes.push(sib);
                if md == 0 && sib & 7 == 5 {
                    disp = 4;
                }
            } else if md == 0 && rm == 5 {
                disp = 4;
            }
            let osz = if rex.is_some_and(|r| r & 8 != 0) {
                8
            } else if prefixes.contains(&0x66) {
                2
            } else {
                4
            };
            let (imm, size) = match opcode {
                [0xC6] => (1, 1),
                [0xC7] => (if osz == 2 { 2 } else { 4 }, osz),
                [0x88] | [0x8A] | [0x0F, 0xB6] | [0x0F, 0xBE] => (0, 1),
                [0x0F, 0xB7] | [0x0F, 0xBF] => (0, 2),
                _ => (0, osz),
            };
            let len = bytes.len() + disp + imm;
            bytes.extend_from_slice(&tail);
            (bytes, len, size)
        })
}

proptest! {
    #[test]
    fn random_15_bytes_never_panic(bytes in any::<[u8; 15]>()) {
        check_any(&bytes, CpuMode::Long64)?;
        check_any(&bytes, CpuMode::Protected32)?;
    }

    #[test]
    fn random_short_inputs_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..24)) {
        check_any(&bytes, CpuMode::Long64)?;
        check_any(&bytes, CpuMode::Protected32)?;
    }

    /// Random bytes after a likely start, so that deep paths are reached.
    #[test]
    fn random_operands_never_panic(
        start in prop::sample::select(vec![0x88u8, 0x89, 0x8A, 0x8B, 0xC6, 0xC7, 0x0F, 0x66, 0x41, 0x48]),
        rest in any::<[u8; 14]>(),
    ) {
        let mut bytes = vec![start];
        bytes.extend(rest);
        check_any(&bytes, CpuMode::Long64)?;
        check_any(&bytes, CpuMode::Protected32)?;
    }

    #[test]
    fn built_instructions_decode_to_their_length((bytes, len, size) in instruction()) {
        let x = decode(&bytes, CpuMode::Long64);
        prop_assert!(x.is_ok(), "{:02x?}: {:?}", bytes, x);
        let x = x.unwrap();
        prop_assert_eq!(usize::from(x.len), len, "{:02x?}", bytes);
        prop_assert_eq!(x.size, size, "{:02x?}", bytes);
    }

    #[test]
    fn merge_keeps_what_the_cpu_keeps(old in any::<u64>(), value in any::<u64>(), n in 0u8..16) {
        let gpr = Gpr::from_index(n);
        prop_assert_eq!(low(gpr, 8).merge(old, value), value);
        prop_assert_eq!(low(gpr, 4).merge(old, value), value & 0xFFFF_FFFF);
        prop_assert_eq!(low(gpr, 2).merge(old, value) >> 16, old >> 16);
        prop_assert_eq!(low(gpr, 2).read(low(gpr, 2).merge(old, value)), value & 0xFFFF);
        let ah = Reg::HighByte(gpr);
        let merged = ah.merge(old, value);
        prop_assert_eq!(merged & !0xFF00, old & !0xFF00);
        prop_assert_eq!(ah.read(merged), value & 0xFF);
    }
}
