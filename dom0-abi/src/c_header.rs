//! Generates `include/oxen_abi.h`, the C view of this ABI, for the dom0 driver.
//!
//! Host-only (`std` feature or tests). Regenerate the committed header with
//! `cargo run -p dom0-abi --features std --bin gen-header`; a test fails when the
//! committed file differs from what this module produces.

use std::fmt::Write as _;
use std::string::String;

use crate::domain::{DOM0_ID, DOMAIN_FLAGS, DOMAIN_NAME_LEN, DomainState, ShutdownReason};
use crate::event::{
    EVENT_READ_FLAGS, EVENTS, NOTIFY_PCI_CLASS, NOTIFY_PCI_DEVICE_ID, NOTIFY_PCI_VENDOR_ID,
};
use crate::hypercall::{CPUID_LEAF_SIGNATURE, CPUID_SIGNATURE, MAX_BUFFER_BYTES, Op, OpGroup};
use crate::info::{HV_VERSION_LEN, VMX_FEATURES};
use crate::ioctl::{
    EVENT_STATUS_FLAGS, HVCTL_DEVICE, IOCTL_MAGIC, Ioctl, MAX_DOMAIN_LIST_CAPACITY,
    MAX_VCPU_LIST_CAPACITY, UNKNOWN_STATUS_ERRNO, status_errno, status_errno_name,
};
use crate::layout::{CType, Flag, STRUCTS, StructLayout};
use crate::lifecycle::DOMAIN_NAME_MAX;
use crate::log::LOG_READ_FLAGS;
use crate::sched::{CAP_NONE, SCHED_SET_FLAGS, VcpuState, WEIGHT_DEFAULT, WEIGHT_MAX, WEIGHT_MIN};
use crate::status::Status;
use crate::vcpu::{BOOT_CS, BOOT_DS, BOOT_VCPU, VcpuMode};
use crate::{ABI_VERSION, PAGE_SIZE};

/// Path of the committed header, relative to the crate root.
pub const HEADER_PATH: &str = "include/oxen_abi.h";

/// The command that regenerates the committed header.
pub const REGENERATE: &str = "cargo run -p dom0-abi --features std --bin gen-header";

/// Renders the whole header.
#[must_use]
pub fn generate() -> String {
    let mut out = String::new();
    prologue(&mut out);
    section(&mut out, "ABI version");
    define(
        &mut out,
        "OXEN_ABI_VERSION_MAJOR",
        ABI_VERSION.major.into(),
        "incompatible changes bump this",
    );
    define(
        &mut out,
        "OXEN_ABI_VERSION_MINOR",
        ABI_VERSION.minor.into(),
        "compatible additions bump this",
    );
    define(
        &mut out,
        "OXEN_PAGE_SIZE",
        PAGE_SIZE.into(),
        "unit of every *_pages field",
    );
    define(
        &mut out,
        "OXEN_MAX_BUFFER_BYTES",
        MAX_BUFFER_BYTES.into(),
        "largest buffer any operation accepts",
    );
    define(
        &mut out,
        "OXEN_HV_VERSION_LEN",
        HV_VERSION_LEN as i128,
        "length of oxen_hv_info.version",
    );
    define(
        &mut out,
        "OXEN_DOMAIN_NAME_LEN",
        DOMAIN_NAME_LEN as i128,
        "length of oxen_domain_info.name",
    );
    define(
        &mut out,
        "OXEN_DOMAIN_NAME_MAX",
        DOMAIN_NAME_MAX as i128,
        "longest name OXEN_OP_DOMAIN_CREATE takes (NUL-terminated)",
    );
    define(
        &mut out,
        "OXEN_DOM0_ID",
        DOM0_ID.into(),
        "domain id of dom0",
    );
    let leaf = std::format!("0x{CPUID_LEAF_SIGNATURE:08x}U");
    let _ = writeln!(
        out,
        "#define {:<32} {leaf:<8} /* CPUID leaf: EBX, ECX, EDX spell the signature */",
        "OXEN_CPUID_LEAF"
    );
    let signature = String::from_utf8_lossy(&CPUID_SIGNATURE).into_owned();
    let _ = writeln!(
        out,
        "#define {:<32} \"{signature}\" /* 12 bytes, no NUL in CPUID */",
        "OXEN_CPUID_SIGNATURE"
    );

    section(
        &mut out,
        "Operations: VMCALL with the number in RAX, args in RDI, RSI, RDX, R10, R8",
    );
    for op in Op::ALL {
        hex_define(&mut out, op.c_name(), op.number(), op.doc());
    }
    out.push_str("/* Wholly reserved operation groups (number = group << 8 | index): */\n");
    for group in OpGroup::ALL.into_iter().filter(|g| !g.is_defined()) {
        let _ = writeln!(out, "/*   0x{:02x}xx {group:?} */", group as u8);
    }
    out.push_str(
        "/* Groups whose unassigned numbers are reserved for later minor versions:\n \
         * such a number is refused with OXEN_STATUS_NOT_IMPLEMENTED, any other\n \
         * unknown number with OXEN_STATUS_INVALID_OPERATION: */\n",
    );
    for group in OpGroup::ALL.into_iter().filter(|g| g.is_open()) {
        let _ = writeln!(out, "/*   0x{:02x}xx {group:?} */", group as u8);
    }

    section(
        &mut out,
        "Status codes returned in RAX (>= 0 success, < 0 error)",
    );
    for status in Status::ALL {
        let name = std::format!("OXEN_STATUS_{}", status.c_suffix());
        let value = std::format!("({}LL)", status.as_raw());
        let _ = writeln!(
            out,
            "#define {name:<32} {value:<8} /* {} */",
            status.message()
        );
    }

    section(&mut out, "Domain states and shutdown reasons");
    for state in DomainState::ALL {
        define(
            &mut out,
            state.c_name(),
            (state as u32).into(),
            &std::format!("{state:?}"),
        );
    }
    for reason in ShutdownReason::ALL {
        define(
            &mut out,
            reason.c_name(),
            (reason as u32).into(),
            &std::format!("{reason:?}"),
        );
    }

    section(&mut out, "vCPU entry (OXEN_OP_VCPU_SET_ENTRY)");
    for mode in VcpuMode::ALL {
        define(&mut out, mode.c_name(), (mode as u32).into(), mode.doc());
    }
    define(
        &mut out,
        "OXEN_BOOT_VCPU",
        BOOT_VCPU.into(),
        "the only vCPU whose entry is set; the others start by INIT/SIPI",
    );
    hex_define_u16(
        &mut out,
        "OXEN_BOOT_CS",
        BOOT_CS,
        "__BOOT_CS in the boot GDT",
    );
    hex_define_u16(
        &mut out,
        "OXEN_BOOT_DS",
        BOOT_DS,
        "__BOOT_DS in the boot GDT",
    );

    section(
        &mut out,
        "Scheduling (1.3): OXEN_OP_SCHED_*, OXEN_OP_VCPU_*",
    );
    define(
        &mut out,
        "OXEN_WEIGHT_MIN",
        WEIGHT_MIN.into(),
        "smallest weight",
    );
    define(
        &mut out,
        "OXEN_WEIGHT_MAX",
        WEIGHT_MAX.into(),
        "largest weight",
    );
    define(
        &mut out,
        "OXEN_WEIGHT_DEFAULT",
        WEIGHT_DEFAULT.into(),
        "weight of a new domain",
    );
    define(&mut out, "OXEN_CAP_NONE", CAP_NONE.into(), "cap: no cap");
    for state in VcpuState::ALL {
        define(
            &mut out,
            state.c_name(),
            (state as u32).into(),
            &std::format!("{state:?}"),
        );
    }

    section(
        &mut out,
        "Notification device (1.2): a virtual PCI function dom0's driver binds to",
    );
    hex_define_word(
        &mut out,
        "OXEN_NOTIFY_PCI_VENDOR",
        NOTIFY_PCI_VENDOR_ID,
        "PCI vendor ID: a placeholder, NOT registered with the PCI-SIG",
    );
    hex_define_word(
        &mut out,
        "OXEN_NOTIFY_PCI_DEVICE",
        NOTIFY_PCI_DEVICE_ID,
        "PCI device ID",
    );
    hex_define_word(
        &mut out,
        "OXEN_NOTIFY_PCI_CLASS",
        NOTIFY_PCI_CLASS,
        "class 0x08, sub-class 0x80: other system peripheral",
    );

    section(&mut out, "Flag bits");
    flags(&mut out, DOMAIN_FLAGS);
    flags(&mut out, LOG_READ_FLAGS);
    flags(&mut out, VMX_FEATURES);
    flags(&mut out, EVENTS);
    flags(&mut out, EVENT_READ_FLAGS);
    flags(&mut out, EVENT_STATUS_FLAGS);
    flags(&mut out, SCHED_SET_FLAGS);

    section(
        &mut out,
        "Argument and result structures (no padding, little-endian)",
    );
    for layout in STRUCTS {
        structure(&mut out, layout);
    }
    ioctls(&mut out);
    out.push_str("#endif /* OXEN_ABI_H */\n");
    out
}

/// The `/dev/hvctl` section: device, numbers (checked against Linux's own
/// macros wherever `<linux/ioctl.h>` was included first) and the status to
/// errno table as a function.
fn ioctls(out: &mut String) {
    // structure() already ended with a blank line.
    out.push_str("/* ---- /dev/hvctl ioctls (the hvctl driver; Linux _IOC encoding) ---- */\n\n");
    let _ = writeln!(
        out,
        "#define {:<32} \"{HVCTL_DEVICE}\" /* misc device, mode 0600 */",
        "OXEN_HVCTL_DEVICE"
    );
    let magic = std::format!("0x{IOCTL_MAGIC:02x}");
    let _ = writeln!(
        out,
        "#define {:<32} {magic:<8} /* ioctl type byte */",
        "OXEN_IOCTL_MAGIC"
    );
    define(
        out,
        "OXEN_MAX_DOMAIN_LIST_CAPACITY",
        MAX_DOMAIN_LIST_CAPACITY.into(),
        "records per OXEN_IOCTL_DOMAIN_LIST",
    );
    define(
        out,
        "OXEN_MAX_VCPU_LIST_CAPACITY",
        MAX_VCPU_LIST_CAPACITY.into(),
        "records per OXEN_IOCTL_VCPU_LIST",
    );
    for ioctl in Ioctl::ALL {
        let value = std::format!("0x{:08x}U", ioctl.number());
        let _ = writeln!(
            out,
            "#define {:<32} {value:<8} /* {}(OXEN_IOCTL_MAGIC, 0x{:02x}, struct {}): {} */",
            ioctl.c_name(),
            ioctl.c_macro(),
            ioctl.nr(),
            ioctl.arg_c_name(),
            ioctl.doc()
        );
    }
    out.push_str("#ifdef _IOC\n");
    for ioctl in Ioctl::ALL {
        let _ = writeln!(
            out,
            "_Static_assert({0} == {1}(OXEN_IOCTL_MAGIC, 0x{2:02x}, struct {3}), \"{0}\");",
            ioctl.c_name(),
            ioctl.c_macro(),
            ioctl.nr(),
            ioctl.arg_c_name()
        );
    }
    out.push_str("#endif\n\n");
    out.push_str(
        "/* The errno (positive) an ioctl fails with when its hypercall returns\n \
         * status < 0: one per status. Linux x86-64 numbers. */\n\
         static inline int oxen_status_errno(int64_t status)\n{\n    switch (status) {\n",
    );
    for status in Status::ALL.into_iter().filter(|s| !s.is_ok()) {
        let _ = writeln!(
            out,
            "    case OXEN_STATUS_{}: return {}; /* {} */",
            status.c_suffix(),
            status_errno(status),
            status_errno_name(status)
        );
    }
    let _ = writeln!(
        out,
        "    default: return {UNKNOWN_STATUS_ERRNO}; /* EIO: a status this ABI version does not define */"
    );
    out.push_str("    }\n}\n\n");
}

fn prologue(out: &mut String) {
    out.push_str(
        "/* SPDX-License-Identifier: MIT OR Apache-2.0 */\n\
         /*\n\
         \x20* oxen_abi.h - the Oxen hypercall ABI, for the dom0 driver.\n\
         \x20*\n\
         \x20* GENERATED from the dom0-abi crate: do not edit. Regenerate with\n",
    );
    let _ = writeln!(out, " *   {REGENERATE}");
    out.push_str(
        " */\n\
         #ifndef OXEN_ABI_H\n\
         #define OXEN_ABI_H\n\n\
         #ifdef __KERNEL__\n\
         #include <linux/types.h>\n\
         #include <linux/stddef.h>\n\
         #else\n\
         #include <stdint.h>\n\
         #include <stddef.h>\n\
         #endif\n",
    );
}

fn section(out: &mut String, title: &str) {
    let _ = write!(out, "\n/* ---- {title} ---- */\n\n");
}

fn define(out: &mut String, name: &str, value: i128, doc: &str) {
    let _ = writeln!(out, "#define {name:<32} {value:<8} /* {doc} */");
}

fn hex_define(out: &mut String, name: &str, value: u64, doc: &str) {
    let value = std::format!("0x{value:04x}ULL");
    let _ = writeln!(out, "#define {name:<32} {value:<8} /* {doc} */");
}

fn hex_define_u16(out: &mut String, name: &str, value: u16, doc: &str) {
    let value = std::format!("0x{value:02x}");
    let _ = writeln!(out, "#define {name:<32} {value:<8} /* {doc} */");
}

fn hex_define_word(out: &mut String, name: &str, value: u16, doc: &str) {
    let value = std::format!("0x{value:04x}");
    let _ = writeln!(out, "#define {name:<32} {value:<8} /* {doc} */");
}

fn flags(out: &mut String, set: &[Flag]) {
    for flag in set {
        let value = std::format!("(1ULL << {})", flag.value.trailing_zeros());
        let _ = writeln!(
            out,
            "#define {:<32} {value:<8} /* {} */",
            flag.c_name, flag.doc
        );
    }
}

fn c_decl(c_type: CType, name: &str) -> String {
    match c_type {
        CType::U16 => std::format!("uint16_t {name};"),
        CType::U32 => std::format!("uint32_t {name};"),
        CType::U64 => std::format!("uint64_t {name};"),
        CType::I64 => std::format!("int64_t {name};"),
        CType::Bytes(n) => std::format!("uint8_t {name}[{n}];"),
        CType::Struct { c_name, .. } => std::format!("struct {c_name} {name};"),
    }
}

fn structure(out: &mut String, layout: &StructLayout) {
    let _ = writeln!(out, "/* {} */", layout.doc);
    let _ = writeln!(out, "struct {} {{", layout.c_name);
    for field in layout.fields {
        let decl = c_decl(field.c_type, field.name);
        let _ = writeln!(
            out,
            "    {decl:<30} /* {:>3}: {} */",
            field.offset, field.doc
        );
    }
    out.push_str("};\n");
    let _ = writeln!(
        out,
        "_Static_assert(sizeof(struct {0}) == {1}, \"struct {0} must be {1} bytes\");",
        layout.c_name, layout.size
    );
    for field in layout.fields {
        let _ = writeln!(
            out,
            "_Static_assert(offsetof(struct {0}, {1}) == {2}, \"{0}.{1} at {2}\");",
            layout.c_name, field.name, field.offset
        );
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;

    fn committed_path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(HEADER_PATH)
    }

    #[test]
    fn committed_header_is_up_to_date() {
        let path = committed_path();
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generate(),
            "{} is stale or missing: run `{REGENERATE}` and commit the result",
            path.display()
        );
    }

    #[test]
    fn header_names_every_op_status_and_struct() {
        let header = generate();
        for op in Op::ALL {
            assert!(header.contains(op.c_name()));
        }
        for status in Status::ALL {
            assert!(header.contains(&std::format!("OXEN_STATUS_{} ", status.c_suffix())));
        }
        for layout in STRUCTS {
            assert!(header.contains(&std::format!("struct {} {{", layout.c_name)));
        }
    }

    /// Compiles `source` with the host C compiler as strict C11; `None` when
    /// there is no `cc`, else the compiler's complaint, if any.
    fn compile(name: &str, source: &str) -> Option<Result<(), String>> {
        let Ok(cc) = Command::new("cc").arg("--version").output() else {
            std::eprintln!("skipped: no `cc` on this machine");
            return None;
        };
        assert!(cc.status.success());
        let dir = std::env::temp_dir().join(std::format!("oxen-abi-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("oxen_abi_check.c");
        std::fs::write(&file, source).unwrap();
        let out = Command::new("cc")
            .args([
                "-std=c11",
                "-fsyntax-only",
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                "-x",
                "c",
            ])
            .arg(&file)
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        Some(if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        })
    }

    /// Compiles the header with the host C compiler, when there is one.
    #[test]
    fn header_is_valid_c() {
        if let Some(Err(e)) = compile("alone", &(generate() + "\nint oxen_abi_check;\n")) {
            panic!("cc rejected the header:\n{e}");
        }
    }

    /// With Linux's `<sys/ioctl.h>` and `<errno.h>` included first, the
    /// header's own assertions compare every ioctl number with `_IOWR`/`_IOR`,
    /// and the errno table is checked against the C library's names.
    #[test]
    #[cfg(target_os = "linux")]
    fn ioctl_numbers_and_errnos_match_linux() {
        // The C library's headers (libc6-dev, linux-libc-dev) may be missing
        // where only the compiler is installed.
        let probe = "#include <sys/ioctl.h>\n#include <errno.h>\nint oxen_abi_probe;\n";
        if let Some(Err(e)) = compile("probe", probe) {
            std::eprintln!("skipped: no <sys/ioctl.h> or <errno.h>: {e}");
            return;
        }
        let mut source = String::from(
            "#include <sys/ioctl.h>\n#include <errno.h>\n#ifndef _IOC\n#error no _IOC\n#endif\n",
        );
        source.push_str(&generate());
        for status in Status::ALL.into_iter().filter(|s| !s.is_ok()) {
            let _ = writeln!(
                source,
                "_Static_assert({} == {}, \"{:?}\");",
                status_errno(status),
                status_errno_name(status),
                status
            );
        }
        let _ = writeln!(
            source,
            "_Static_assert({UNKNOWN_STATUS_ERRNO} == EIO, \"EIO\");"
        );
        source.push_str("int oxen_abi_check(void);\nint oxen_abi_check(void) { return oxen_status_errno(-7); }\n");
        if let Some(Err(e)) = compile("linux", &source) {
            panic!("cc rejected the header with <sys/ioctl.h>:\n{e}");
        }
    }
}
