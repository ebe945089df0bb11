//! The hypervisor's log ring ([`crate::Op::LogRead`]).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::layout::{CType, Flag, StructLayout, struct_layout};

/// After copying, discard everything in the ring (like `xl dmesg -c`).
pub const LOG_READ_CLEAR: u32 = 1 << 0;

/// Every flag [`LogReadArgs::flags`] may carry in this ABI version; any other bit
/// is refused with [`crate::Status::InvalidArgument`].
pub const LOG_READ_FLAGS_ALL: u32 = LOG_READ_CLEAR;

/// The bits of [`LogReadArgs::flags`].
pub const LOG_READ_FLAGS: &[Flag] = &[Flag {
    name: "clear",
    c_name: "OXEN_LOG_READ_CLEAR",
    value: LOG_READ_CLEAR as u64,
    doc: "clear the ring after reading",
}];

/// Argument of [`crate::Op::LogRead`].
///
/// Copies the oldest bytes still in the ring, up to `size`, as UTF-8 text with
/// `\n` line ends (a read may end inside a line).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, IntoBytes, FromBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct LogReadArgs {
    /// In: GPA of the destination buffer.
    pub buffer_gpa: u64,
    /// In: size of the buffer in bytes (at most
    /// [`crate::hypercall::MAX_BUFFER_BYTES`]).
    pub size: u32,
    /// In: [`LOG_READ_FLAGS`] bits.
    pub flags: u32,
    /// Out: bytes copied.
    pub returned: u32,
    /// Out: bytes lost because the ring wrapped since the last clear.
    pub dropped: u32,
}

crate::assert_layout!(LogReadArgs, size = 24, {
    buffer_gpa: 0,
    size: 8,
    flags: 12,
    returned: 16,
    dropped: 20,
});

impl LogReadArgs {
    /// Field table for the C header.
    pub const LAYOUT: StructLayout = struct_layout!(
        LogReadArgs,
        "oxen_log_read_args",
        "Argument of OXEN_OP_LOG_READ (by guest-physical address in RDI).",
        [
            buffer_gpa: CType::U64 => "in: GPA of the destination buffer",
            size: CType::U32 => "in: buffer size in bytes",
            flags: CType::U32 => "in: OXEN_LOG_READ_* bits",
            returned: CType::U32 => "out: bytes copied",
            dropped: CType::U32 => "out: bytes lost to ring wrap since the last clear",
        ]
    );

    /// Whether `flags` holds only bits this ABI version defines.
    #[must_use]
    pub const fn flags_valid(&self) -> bool {
        self.flags & !LOG_READ_FLAGS_ALL == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_flags_are_invalid() {
        let mut args = LogReadArgs {
            flags: LOG_READ_CLEAR,
            ..LogReadArgs::default()
        };
        assert!(args.flags_valid());
        args.flags |= 1 << 7;
        assert!(!args.flags_valid());
    }
}
