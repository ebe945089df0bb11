//! Machine-readable descriptions of the ABI: struct field tables, constants and
//! flag sets.
//!
//! The C header is generated from these tables, and the tests check each table
//! against the real Rust layout (offsets come from `offset_of!`, sizes from the
//! field types, and the fields must tile the struct with no gap), so the header
//! cannot drift from the Rust definitions.

/// The C type of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CType {
    /// `uint16_t`
    U16,
    /// `uint32_t`
    U32,
    /// `uint64_t`
    U64,
    /// `int64_t`
    I64,
    /// `uint8_t name[N]`
    Bytes(usize),
    /// A nested ABI struct, `struct <c_name> name`, of `size` bytes.
    Struct {
        /// Its C tag (declared earlier in the header).
        c_name: &'static str,
        /// Its size in bytes.
        size: usize,
    },
}

impl CType {
    /// Size of the type in bytes.
    #[must_use]
    pub const fn size(self) -> usize {
        match self {
            Self::U16 => 2,
            Self::U32 => 4,
            Self::U64 | Self::I64 => 8,
            Self::Bytes(n) => n,
            Self::Struct { size, .. } => size,
        }
    }
}

/// One field of an ABI struct.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Field name (identical in Rust and C).
    pub name: &'static str,
    /// C type of the field.
    pub c_type: CType,
    /// Byte offset, taken from `offset_of!` on the Rust struct.
    pub offset: usize,
    /// Size of the Rust field's type in bytes.
    pub rust_size: usize,
    /// One-line description.
    pub doc: &'static str,
}

/// The description of one ABI struct.
#[derive(Debug, Clone, Copy)]
pub struct StructLayout {
    /// Rust type name.
    pub rust_name: &'static str,
    /// C struct tag (`struct <c_name>`).
    pub c_name: &'static str,
    /// `size_of` of the Rust type.
    pub size: usize,
    /// One-line description.
    pub doc: &'static str,
    /// Fields in declaration order.
    pub fields: &'static [Field],
}

/// A named constant exported to C.
#[derive(Debug, Clone, Copy)]
pub struct Constant {
    /// C macro name.
    pub c_name: &'static str,
    /// Value (emitted in decimal, or hex for flags).
    pub value: i128,
    /// One-line description.
    pub doc: &'static str,
}

/// One bit of a flag set, exported to C and used to print flag names.
#[derive(Debug, Clone, Copy)]
pub struct Flag {
    /// Short lower-case name as tools print it, e.g. `ept_2m`.
    pub name: &'static str,
    /// C macro name.
    pub c_name: &'static str,
    /// The bit (a single set bit).
    pub value: u64,
    /// One-line description.
    pub doc: &'static str,
}

/// Names of the flags of `set` that are present in `bits`, in table order.
pub fn flag_names(set: &'static [Flag], bits: u64) -> impl Iterator<Item = &'static str> {
    set.iter()
        .filter(move |f| bits & f.value != 0)
        .map(|f| f.name)
}

/// Returns the size of the field that `_project` selects, without evaluating it.
#[doc(hidden)]
#[must_use]
pub const fn field_size<T, F>(_project: fn(&T) -> &F) -> usize {
    core::mem::size_of::<F>()
}

/// Builds a [`StructLayout`] for `$ty` from its field list.
macro_rules! struct_layout {
    ($ty:ty, $c_name:literal, $doc:literal,
     [ $( $field:ident : $cty:expr => $fdoc:literal ),* $(,)? ]) => {
        $crate::layout::StructLayout {
            rust_name: stringify!($ty),
            c_name: $c_name,
            size: ::core::mem::size_of::<$ty>(),
            doc: $doc,
            fields: &[ $( $crate::layout::Field {
                name: stringify!($field),
                c_type: $cty,
                offset: ::core::mem::offset_of!($ty, $field),
                rust_size: $crate::layout::field_size(|s: &$ty| &s.$field),
                doc: $fdoc,
            } ),* ],
        }
    };
}
pub(crate) use struct_layout;

/// Every ABI struct, in the order the header declares them.
pub const STRUCTS: &[StructLayout] = &[
    crate::version::VersionArgs::LAYOUT,
    crate::info::HvInfo::LAYOUT,
    crate::domain::DomainInfo::LAYOUT,
    crate::domain::DomainListArgs::LAYOUT,
    crate::log::LogReadArgs::LAYOUT,
    crate::lifecycle::DomainCreateArgs::LAYOUT,
    crate::vcpu::VcpuEntry::LAYOUT,
    crate::event::EventReadArgs::LAYOUT,
    crate::sched::SchedParams::LAYOUT,
    crate::sched::VcpuInfo::LAYOUT,
    crate::sched::VcpuListArgs::LAYOUT,
    crate::ioctl::IoctlDomainList::LAYOUT,
    crate::ioctl::IoctlDomainInfo::LAYOUT,
    crate::ioctl::IoctlLogRead::LAYOUT,
    crate::ioctl::IoctlRaw::LAYOUT,
    crate::ioctl::IoctlDomid::LAYOUT,
    crate::ioctl::IoctlDomainShutdown::LAYOUT,
    crate::ioctl::IoctlCopyIn::LAYOUT,
    crate::ioctl::IoctlVcpuSetEntry::LAYOUT,
    crate::ioctl::IoctlConsole::LAYOUT,
    crate::ioctl::IoctlEventRead::LAYOUT,
    crate::ioctl::IoctlVcpuList::LAYOUT,
    crate::ioctl::IoctlVcpuAffinity::LAYOUT,
];

/// Checks that a layout table matches its struct: every field's size agrees with
/// its C type, and the fields tile the struct from offset 0 with no gap or overlap.
///
/// # Errors
///
/// Returns a description of the first mismatch.
pub fn check(layout: &StructLayout) -> Result<(), &'static str> {
    let mut next = 0;
    for field in layout.fields {
        if field.c_type.size() != field.rust_size {
            return Err("a field's C type has a different size from its Rust type");
        }
        if field.offset != next {
            return Err("fields are out of order, overlap, or leave a gap (padding)");
        }
        next = field.offset + field.rust_size;
    }
    if next != layout.size {
        return Err("the fields do not cover the whole struct (missing field or tail padding)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_matches_its_struct() {
        for layout in STRUCTS {
            if let Err(e) = check(layout) {
                panic!("{}: {e}", layout.rust_name);
            }
        }
    }

    #[test]
    fn nested_structs_are_declared_earlier_with_their_size() {
        for (i, layout) in STRUCTS.iter().enumerate() {
            for field in layout.fields {
                if let CType::Struct { c_name, size } = field.c_type {
                    let inner = STRUCTS[..i]
                        .iter()
                        .find(|l| l.c_name == c_name)
                        .unwrap_or_else(|| {
                            panic!(
                                "{}.{}: struct {c_name} not declared before",
                                layout.c_name, field.name
                            )
                        });
                    assert_eq!(inner.size, size, "{}.{}", layout.c_name, field.name);
                }
            }
        }
    }

    #[test]
    fn c_names_are_unique() {
        for (i, a) in STRUCTS.iter().enumerate() {
            for b in &STRUCTS[i + 1..] {
                assert_ne!(a.c_name, b.c_name);
            }
        }
    }
}
