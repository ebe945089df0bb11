//! Decoding the instruction behind an MMIO access.
//!
//! An EPT violation on an emulated device's page gives the guest-physical
//! address and whether the access was a read or a write (SDM Vol. 3C
//! §28.2.1, Table 28-7), but not the size, the register, the value or the
//! instruction's length. This module reads them from the instruction bytes
//! (fetched with [`super::guest_walk::fetch`]).
//!
//! It decodes the moves a Linux kernel uses for MMIO: its `readb/w/l/q` and
//! `writeb/w/l/q` are single MOVs (`arch/x86/include/asm/io.h`), and what
//! Linux's own MMIO emulation accepts (`insn_decode_mmio()`) is this set:
//!
//! | opcode | instruction | SDM Vol. 2B |
//! |---|---|---|
//! | 88 /r, 89 /r | MOV r/m, reg | "MOV—Move" |
//! | 8A /r, 8B /r | MOV reg, r/m | "MOV—Move" |
//! | C6 /0 ib, C7 /0 iw/id | MOV r/m, imm | "MOV—Move" |
//! | 0F B6 /r, 0F B7 /r | MOVZX reg, r/m8 / r/m16 | "MOVZX—Move With Zero-Extend" |
//! | 0F BE /r, 0F BF /r | MOVSX reg, r/m8 / r/m16 | "MOVSX/MOVSXD—Move With Sign-Extension" |
//!
//! with the legacy prefixes 66 (operand size), 67 (address size, 64-bit
//! mode only) and the segment overrides, and a REX prefix (SDM Vol. 2A
//! §2.1.1, §2.2.1). Everything else is refused with a [`DecodeError`] that
//! names what was found: LOCK/REP/REPNE (F0, F2, F3; string moves such as
//! `rep movs` from `memcpy_toio` are not emulated), other opcodes (MOVS,
//! MOV moffs A0-A3, arithmetic on memory, VEX/EVEX), register-only forms,
//! and 16-bit addressing.
//!
//! The memory operand is decoded in full ([`MemOperand`]) so that the
//! length is right; its address is not needed, since the EPT violation
//! gives it, but it can be checked against the guest-linear address VT-x
//! reports.
//!
//! No byte sequence makes the decoder panic, and a successful decode is
//! never longer than 15 bytes (SDM Vol. 2A §2.3.11).
#![deny(unsafe_code)]

use core::fmt;

use crate::vmx::exit::Gpr;

/// The longest x86 instruction (SDM Vol. 2A §2.3.11).
pub const MAX_INSN_LEN: usize = 15;

/// How the code segment decodes (SDM Vol. 3A §5.2.1: CS.L and CS.D).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuMode {
    /// 64-bit mode (IA-32e, CS.L = 1): REX prefixes, 32-bit default
    /// operands, 64-bit addresses, RIP-relative addressing.
    Long64,
    /// 32-bit protected or compatibility mode (CS.L = 0, CS.D = 1): no REX
    /// (40-4F are INC/DEC), 32-bit operands and addresses, ModRM 00/101 is
    /// an absolute disp32. 16-bit code segments are not supported.
    Protected32,
}

/// A register operand: a general-purpose register, or part of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reg {
    /// The low `bytes` (1, 2, 4 or 8) bytes of `gpr`: AL, AX, EAX, RAX,
    /// SPL, R8B, R9W, ...
    Low {
        /// The register.
        gpr: Gpr,
        /// Its width in this instruction.
        bytes: u8,
    },
    /// Bits 15:8 of RAX, RCX, RDX or RBX: AH, CH, DH, BH, which byte
    /// registers 4-7 mean when no REX prefix is present (SDM Vol. 2A
    /// §3.1.1.1, Table 3-1; §2.2.1.2).
    HighByte(Gpr),
}

impl Reg {
    /// The register this is part of.
    pub const fn gpr(self) -> Gpr {
        match self {
            Self::Low { gpr, .. } | Self::HighByte(gpr) => gpr,
        }
    }

    /// Its width in bytes.
    pub const fn bytes(self) -> u8 {
        match self {
            Self::Low { bytes, .. } => bytes,
            Self::HighByte(_) => 1,
        }
    }

    /// Its value, zero-extended, given the whole register `full`.
    pub const fn read(self, full: u64) -> u64 {
        match self {
            Self::Low { bytes, .. } => full & mask(bytes),
            Self::HighByte(_) => (full >> 8) & 0xFF,
        }
    }

    /// The whole register after the CPU writes `value` to this part of it,
    /// given its old contents (SDM Vol. 1 §3.4.1.1): a 32-bit write
    /// zero-extends into bits 63:32, 8- and 16-bit writes leave the other
    /// bits alone, a 64-bit write replaces everything. (Outside 64-bit mode
    /// bits 63:32 are undefined, so zeroing them is as good as anything.)
    pub const fn merge(self, old: u64, value: u64) -> u64 {
        match self {
            Self::Low { bytes: 4, .. } => value & 0xFFFF_FFFF,
            Self::Low { bytes, .. } => {
                let m = mask(bytes);
                (old & !m) | (value & m)
            }
            Self::HighByte(_) => (old & !0xFF00) | ((value & 0xFF) << 8),
        }
    }
}

/// All-ones in the low `bytes` bytes (8 or more: all 64 bits).
const fn mask(bytes: u8) -> u64 {
    if bytes >= 8 {
        u64::MAX
    } else {
        (1u64 << (bytes * 8)) - 1
    }
}

/// What a write stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operand {
    /// A register's value.
    Reg(Reg),
    /// An immediate, already sign-extended and truncated to the access
    /// size.
    Imm(u64),
}

/// How a read's value reaches its register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extend {
    /// MOV: the access is as wide as the register.
    None,
    /// MOVZX: zero-extended from the access size.
    Zero,
    /// MOVSX: sign-extended from the access size.
    Sign,
}

/// Which way the data goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Memory to register.
    Read {
        /// The destination, at its width in the instruction (wider than
        /// the access for MOVZX/MOVSX).
        dest: Reg,
        /// How the value is widened.
        extend: Extend,
    },
    /// Register or immediate to memory.
    Write {
        /// The value's source.
        src: Operand,
    },
}

/// A segment-override prefix (SDM Vol. 2A §2.1.1, group 2). In 64-bit
/// mode only FS and GS change the address (Vol. 1 §3.3.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// 26.
    Es,
    /// 2E.
    Cs,
    /// 36.
    Ss,
    /// 3E.
    Ds,
    /// 64.
    Fs,
    /// 65.
    Gs,
}

/// The base of a memory operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// No base: an absolute displacement (SIB base 101 with mod 00, or
    /// ModRM 00/101 outside 64-bit mode).
    None,
    /// A register.
    Gpr(Gpr),
    /// The address of the next instruction (ModRM 00/101 in 64-bit mode,
    /// SDM Vol. 2A §2.2.1.6).
    Rip,
}

/// The memory operand (SDM Vol. 2A §2.1.5, Tables 2-2 and 2-3; §2.2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemOperand {
    /// A segment override, if any.
    pub segment: Option<Segment>,
    /// The base.
    pub base: Base,
    /// An index register and its scale (1, 2, 4 or 8).
    pub index: Option<(Gpr, u8)>,
    /// The displacement, sign-extended.
    pub disp: i32,
    /// Address size in bytes: 8, or 4 (67 prefix in 64-bit mode, or
    /// 32-bit mode).
    pub addr_bytes: u8,
}

impl MemOperand {
    /// The effective address (the offset within the segment): base +
    /// index * scale + displacement, truncated to the address size.
    /// `next_rip` is the address of the following instruction (RIP +
    /// [`Decoded::len`]), used by RIP-relative operands.
    pub fn effective_address(&self, regs: &impl Registers, next_rip: u64) -> u64 {
        let base = match self.base {
            Base::None => 0,
            Base::Gpr(gpr) => regs.get(gpr),
            Base::Rip => next_rip,
        };
        let index = match self.index {
            Some((gpr, scale)) => regs.get(gpr).wrapping_mul(u64::from(scale)),
            None => 0,
        };
        let sum = base
            .wrapping_add(index)
            .wrapping_add(i64::from(self.disp) as u64);
        sum & mask(self.addr_bytes)
    }
}

/// The guest's general-purpose registers, as the backend holds them.
pub trait Registers {
    /// The value of `gpr`.
    fn get(&self, gpr: Gpr) -> u64;
    /// Sets `gpr`.
    fn set(&mut self, gpr: Gpr, value: u64);
}

impl Registers for [u64; 16] {
    fn get(&self, gpr: Gpr) -> u64 {
        self[gpr.index()]
    }

    fn set(&mut self, gpr: Gpr, value: u64) {
        self[gpr.index()] = value;
    }
}

/// A decoded MMIO instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoded {
    /// Bytes in the instruction (1-15): what RIP advances by.
    pub len: u8,
    /// Bytes accessed in memory: 1, 2, 4 or 8.
    pub size: u8,
    /// Read or write, and the register or immediate.
    pub kind: Kind,
    /// The memory operand.
    pub mem: MemOperand,
}

impl Decoded {
    /// For a write, the value stored: the source truncated to the access
    /// size. `None` for a read.
    pub fn write_value(&self, regs: &impl Registers) -> Option<u64> {
        match self.kind {
            Kind::Write {
                src: Operand::Reg(reg),
            } => Some(reg.read(regs.get(reg.gpr()))),
            Kind::Write {
                src: Operand::Imm(imm),
            } => Some(imm & mask(self.size)),
            Kind::Read { .. } => None,
        }
    }

    /// Completes a read the way the CPU would: `value` (of which the low
    /// `size` bytes count) is widened as the instruction says and merged
    /// into the destination register. Does nothing for a write.
    pub fn apply_read(&self, value: u64, regs: &mut impl Registers) {
        if let Kind::Read { dest, extend } = self.kind {
            let value = value & mask(self.size);
            let value = match extend {
                Extend::None | Extend::Zero => value,
                Extend::Sign => sign_extend(value, self.size),
            };
            let gpr = dest.gpr();
            regs.set(gpr, dest.merge(regs.get(gpr), value));
        }
    }
}

/// `value`'s low `bytes` bytes, sign-extended to 64 bits.
const fn sign_extend(value: u64, bytes: u8) -> u64 {
    if bytes >= 8 {
        return value;
    }
    let shift = 64 - bytes as u32 * 8;
    (((value << shift) as i64) >> shift) as u64
}

/// An opcode: one byte, or two with the 0F escape (SDM Vol. 2A §2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opcode {
    /// Preceded by 0F.
    pub escape_0f: bool,
    /// The opcode byte.
    pub byte: u8,
}

impl Opcode {
    const fn one(byte: u8) -> Self {
        Self {
            escape_0f: false,
            byte,
        }
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.escape_0f {
            f.write_str("0F ")?;
        }
        write!(f, "{:02X}", self.byte)
    }
}

/// Why an instruction was not decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end before the instruction does (fewer than 15 were
    /// given, e.g. the next code page could not be read).
    Truncated,
    /// More than 15 bytes: the CPU raises #GP (SDM Vol. 3A §6.15).
    TooLong,
    /// A prefix this emulation refuses: F0 (LOCK), F2 (REPNE), F3 (REP),
    /// or 67 outside 64-bit mode (16-bit addressing).
    Prefix(u8),
    /// An opcode that is not one of the moves emulated.
    Opcode(Opcode),
    /// C6 or C7 with a ModRM.reg other than 0 (only /0 is MOV).
    OpcodeExtension {
        /// C6 or C7.
        opcode: Opcode,
        /// ModRM bits 5:3.
        reg: u8,
    },
    /// ModRM.mod = 11: the operand is a register, not memory.
    RegisterOperand(Opcode),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Truncated => f.write_str("instruction bytes end before the instruction"),
            Self::TooLong => f.write_str("instruction longer than 15 bytes"),
            Self::Prefix(p) => write!(f, "prefix {p:02X} is not emulated for MMIO"),
            Self::Opcode(op) => write!(f, "opcode {op} is not an MMIO move this emulates"),
            Self::OpcodeExtension { opcode, reg } => {
                write!(
                    f,
                    "opcode {opcode} /{reg} is not an MMIO move this emulates"
                )
            }
            Self::RegisterOperand(op) => {
                write!(
                    f,
                    "opcode {op} with a register operand does not access memory"
                )
            }
        }
    }
}

/// The instruction bytes, read one at a time.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        if self.pos >= MAX_INSN_LEN {
            return Err(DecodeError::TooLong);
        }
        let b = *self.bytes.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    /// `n` (at most 4) bytes, little-endian, sign-extended.
    fn signed(&mut self, n: usize) -> Result<i32, DecodeError> {
        let mut v: u32 = 0;
        for i in 0..n {
            v |= u32::from(self.byte()?) << (8 * i);
        }
        let shift = 32 - 8 * n as u32;
        Ok(((v << shift) as i32) >> shift)
    }
}

/// The prefixes before the opcode.
#[derive(Debug, Default, Clone, Copy)]
struct Prefixes {
    operand_16: bool,
    address_32: bool,
    segment: Option<Segment>,
    /// The REX byte, if it immediately precedes the opcode.
    rex: Option<u8>,
}

impl Prefixes {
    const fn rex_bit(&self, bit: u8) -> u8 {
        match self.rex {
            Some(r) => (r >> bit) & 1,
            None => 0,
        }
    }

    /// Operand size for the non-byte forms (SDM Vol. 2A §2.2.1.2, Table
    /// 2-4: REX.W wins over 66).
    const fn operand_bytes(&self) -> u8 {
        if self.rex_bit(3) != 0 {
            8
        } else if self.operand_16 {
            2
        } else {
            4
        }
    }

    /// Byte register `n` (0-15) (SDM Vol. 2A §2.2.1.2: with any REX, 4-7
    /// are SPL..DIL; without, AH..BH).
    fn byte_reg(&self, n: u8) -> Reg {
        if self.rex.is_none() && (4..8).contains(&n) {
            Reg::HighByte(Gpr::from_index(n - 4))
        } else {
            Reg::Low {
                gpr: Gpr::from_index(n),
                bytes: 1,
            }
        }
    }
}

/// Reads the prefixes (SDM Vol. 2A §2.1.1, §2.2.1) and returns them with
/// the first opcode byte.
fn prefixes(cur: &mut Cursor<'_>, mode: CpuMode) -> Result<(Prefixes, u8), DecodeError> {
    let mut p = Prefixes::default();
    loop {
        let b = cur.byte()?;
        let segment = match b {
            0x26 => Some(Segment::Es),
            0x2E => Some(Segment::Cs),
            0x36 => Some(Segment::Ss),
            0x3E => Some(Segment::Ds),
            0x64 => Some(Segment::Fs),
            0x65 => Some(Segment::Gs),
            _ => None,
        };
        match b {
            0x40..=0x4F if mode == CpuMode::Long64 => {
                p.rex = Some(b);
                continue;
            }
            0xF0 | 0xF2 | 0xF3 => return Err(DecodeError::Prefix(b)),
            0x67 if mode == CpuMode::Protected32 => return Err(DecodeError::Prefix(b)),
            0x66 => p.operand_16 = true,
            0x67 => p.address_32 = true,
            _ if segment.is_some() => p.segment = segment,
            _ => return Ok((p, b)),
        }
        // A REX prefix not immediately before the opcode is ignored
        // (§2.2.1).
        p.rex = None;
    }
}

/// The form of an emulated opcode, before its operands are read.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// 88/89: MOV r/m, reg.
    StoreReg { size: u8 },
    /// 8A/8B: MOV reg, r/m.
    LoadReg { size: u8 },
    /// C6/C7 /0: MOV r/m, imm (`imm` bytes of immediate).
    StoreImm { size: u8, imm: usize },
    /// 0F B6/B7/BE/BF: MOVZX/MOVSX reg, r/m.
    LoadExtend {
        size: u8,
        dest_bytes: u8,
        extend: Extend,
    },
}

fn form(op: Opcode, p: &Prefixes) -> Result<Form, DecodeError> {
    let osz = p.operand_bytes();
    let widen = |size, extend| Form::LoadExtend {
        size,
        dest_bytes: osz,
        extend,
    };
    Ok(match (op.escape_0f, op.byte) {
        (false, 0x88) => Form::StoreReg { size: 1 },
        (false, 0x89) => Form::StoreReg { size: osz },
        (false, 0x8A) => Form::LoadReg { size: 1 },
        (false, 0x8B) => Form::LoadReg { size: osz },
        (false, 0xC6) => Form::StoreImm { size: 1, imm: 1 },
        // imm16 with a 16-bit operand; otherwise imm32, sign-extended for
        // a 64-bit operand.
        (false, 0xC7) => Form::StoreImm {
            size: osz,
            imm: if osz == 2 { 2 } else { 4 },
        },
        (true, 0xB6) => widen(1, Extend::Zero),
        (true, 0xB7) => widen(2, Extend::Zero),
        (true, 0xBE) => widen(1, Extend::Sign),
        (true, 0xBF) => widen(2, Extend::Sign),
        _ => return Err(DecodeError::Opcode(op)),
    })
}

/// Decodes the ModRM byte's memory operand (with SIB and displacement;
/// SDM Vol. 2A §2.1.5, Tables 2-2 and 2-3, and for 64-bit mode §2.2.1.2,
/// Table 2-5, and §2.2.1.6) and returns it with ModRM.reg extended by
/// REX.R.
fn modrm(
    cur: &mut Cursor<'_>,
    p: &Prefixes,
    op: Opcode,
    mode: CpuMode,
) -> Result<(u8, MemOperand), DecodeError> {
    let modrm = cur.byte()?;
    let md = modrm >> 6;
    let reg = (modrm >> 3) & 7;
    let rm = modrm & 7;
    if matches!((op.escape_0f, op.byte), (false, 0xC6 | 0xC7)) && reg != 0 {
        return Err(DecodeError::OpcodeExtension { opcode: op, reg });
    }
    if md == 3 {
        return Err(DecodeError::RegisterOperand(op));
    }
    let addr_bytes = if mode == CpuMode::Long64 && !p.address_32 {
        8
    } else {
        4
    };
    let mut mem = MemOperand {
        segment: p.segment,
        base: Base::None,
        index: None,
        disp: 0,
        addr_bytes,
    };
    // A disp32 in place of a base: SIB base 101 or ModRM rm 101 with mod 00
    // (whatever REX.B says, Table 2-5).
    let mut no_base = false;
    if rm == 4 {
        let sib = cur.byte()?;
        let index = ((sib >> 3) & 7) | (p.rex_bit(1) << 3);
        // Index 100 without REX.X means none; R12 is a valid index.
        if index != 4 {
            mem.index = Some((Gpr::from_index(index), 1 << (sib >> 6)));
        }
        let base = sib & 7;
        if base == 5 && md == 0 {
            no_base = true;
        } else {
            mem.base = Base::Gpr(Gpr::from_index(base | (p.rex_bit(0) << 3)));
        }
    } else if rm == 5 && md == 0 {
        no_base = true;
        if mode == CpuMode::Long64 {
            mem.base = Base::Rip;
        }
    } else {
        mem.base = Base::Gpr(Gpr::from_index(rm | (p.rex_bit(0) << 3)));
    }
    mem.disp = match md {
        0 if no_base => cur.signed(4)?,
        1 => cur.signed(1)?,
        2 => cur.signed(4)?,
        _ => 0,
    };
    Ok((reg | (p.rex_bit(2) << 3), mem))
}

/// Decodes the instruction at the start of `bytes` (only the first 15
/// count) as code in `mode`.
pub fn decode(bytes: &[u8], mode: CpuMode) -> Result<Decoded, DecodeError> {
    let mut cur = Cursor { bytes, pos: 0 };
    let (p, first) = prefixes(&mut cur, mode)?;
    let op = if first == 0x0F {
        Opcode {
            escape_0f: true,
            byte: cur.byte()?,
        }
    } else {
        Opcode::one(first)
    };
    let form = form(op, &p)?;
    let (reg, mem) = modrm(&mut cur, &p, op, mode)?;
    let (size, kind) = match form {
        Form::StoreReg { size: 1 } => (
            1,
            Kind::Write {
                src: Operand::Reg(p.byte_reg(reg)),
            },
        ),
        Form::StoreReg { size } => {
            let src = Reg::Low {
                gpr: Gpr::from_index(reg),
                bytes: size,
            };
            (
                size,
                Kind::Write {
                    src: Operand::Reg(src),
                },
            )
        }
        Form::LoadReg { size: 1 } => (
            1,
            Kind::Read {
                dest: p.byte_reg(reg),
                extend: Extend::None,
            },
        ),
        Form::LoadReg { size } => {
            let dest = Reg::Low {
                gpr: Gpr::from_index(reg),
                bytes: size,
            };
            (
                size,
                Kind::Read {
                    dest,
                    extend: Extend::None,
                },
            )
        }
        Form::StoreImm { size, imm } => {
            let value = (i64::from(cur.signed(imm)?) as u64) & mask(size);
            (
                size,
                Kind::Write {
                    src: Operand::Imm(value),
                },
            )
        }
        Form::LoadExtend {
            size,
            dest_bytes,
            extend,
        } => {
            let dest = Reg::Low {
                gpr: Gpr::from_index(reg),
                bytes: dest_bytes,
            };
            (size, Kind::Read { dest, extend })
        }
    };
    Ok(Decoded {
        len: cur.pos as u8,
        size,
        kind,
        mem,
    })
}

#[cfg(test)]
mod tests;
