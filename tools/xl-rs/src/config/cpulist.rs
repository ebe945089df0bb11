//! xl's CPU-list syntax, shared by `cpus =` in xl.cfg and `vcpu-pin`, and
//! the range lists `vcpu-list` prints.
//!
//! A list is items separated by commas, read left to right:
//!
//! - `all`: every CPU;
//! - `N` or `N-M` (`N <= M`): add CPU N, or CPUs N to M;
//! - `^N` or `^N-M`: remove them from the set built so far.
//!
//! When the *first* item is an exclusion, the set starts from `all`, so
//! `^1` means every CPU but 1 (`all,^1`). Spaces around items are allowed.
//! CPUs are 0 to 63 (the ABI's bitmap); the hypervisor drops CPUs the
//! machine does not have. A list that leaves nothing is an error.

/// The largest CPU number a list may name.
pub const MAX_CPU: u32 = 63;

/// A set of physical CPUs, bit N = CPU N; `u64::MAX` is `all`. Serializes
/// as its CPU list (`"all"`, `"0-3,5"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CpuSet(pub u64);

impl serde::Serialize for CpuSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_cpu_set(self.0, 64))
    }
}

impl CpuSet {
    /// Every CPU.
    pub const ALL: Self = Self(u64::MAX);

    /// Whether this is every CPU.
    #[must_use]
    pub const fn is_all(self) -> bool {
        self.0 == u64::MAX
    }
}

/// Parses a CPU list.
///
/// # Errors
///
/// What is wrong with it, for a message that names where it came from.
pub fn parse_cpu_list(text: &str) -> Result<CpuSet, String> {
    if text.trim().is_empty() {
        return Err("an empty CPU list (use \"all\" or CPU numbers like \"0-3,5\")".to_owned());
    }
    let mut set = 0u64;
    for (i, item) in text.split(',').map(str::trim).enumerate() {
        let (remove, body) = match item.strip_prefix('^') {
            Some(rest) => (true, rest.trim()),
            None => (false, item),
        };
        if remove && i == 0 {
            set = u64::MAX;
        }
        let bits = if body == "all" {
            u64::MAX
        } else {
            range_bits(body)?
        };
        if remove {
            set &= !bits;
        } else {
            set |= bits;
        }
    }
    if set == 0 {
        return Err(format!("the CPU list \"{text}\" leaves no CPU"));
    }
    Ok(CpuSet(set))
}

/// The bits of `N` or `N-M`.
fn range_bits(item: &str) -> Result<u64, String> {
    let cpu = |s: &str| -> Result<u32, String> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "`{item}` is not a CPU, a range N-M, `all` or an exclusion ^N"
            ));
        }
        match s.parse::<u32>() {
            Ok(n) if n <= MAX_CPU => Ok(n),
            _ => Err(format!("CPU {s} is out of range (0 to {MAX_CPU})")),
        }
    };
    let (first, last) = match item.split_once('-') {
        Some((a, b)) => (cpu(a)?, cpu(b)?),
        None => {
            let n = cpu(item)?;
            (n, n)
        }
    };
    if first > last {
        return Err(format!("the range `{item}` runs backwards"));
    }
    let high = if last == 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    };
    Ok(high & !((1u64 << first) - 1))
}

/// Formats `set` as `vcpu-list` shows it, on a machine of `cpus` CPUs:
/// `all` when it holds every one of them, else ranges (`0-3,5`).
#[must_use]
pub fn format_cpu_set(set: u64, cpus: u32) -> String {
    let machine = if cpus >= 64 {
        u64::MAX
    } else {
        (1u64 << cpus) - 1
    };
    if set & machine == machine && machine != 0 {
        return "all".to_owned();
    }
    let mut parts = Vec::new();
    let mut cpu = 0u32;
    while cpu < 64 {
        if set & (1 << cpu) == 0 {
            cpu += 1;
            continue;
        }
        let start = cpu;
        while cpu + 1 < 64 && set & (1 << (cpu + 1)) != 0 {
            cpu += 1;
        }
        parts.push(if start == cpu {
            start.to_string()
        } else {
            format!("{start}-{cpu}")
        });
        cpu += 1;
    }
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(text: &str) -> u64 {
        parse_cpu_list(text).unwrap().0
    }

    #[test]
    fn numbers_ranges_and_all() {
        assert_eq!(bits("all"), u64::MAX);
        assert_eq!(bits("3"), 0b1000);
        assert_eq!(bits("0-3,5"), 0b10_1111);
        assert_eq!(bits(" 1 , 2-2 "), 0b110);
        assert_eq!(bits("63"), 1 << 63);
        assert_eq!(bits("0-63"), u64::MAX);
        assert_eq!(bits("62-63"), 0b11 << 62);
    }

    #[test]
    fn exclusions_apply_left_to_right() {
        assert_eq!(bits("all,^1"), !0b10);
        assert_eq!(bits("^1"), !0b10, "a leading exclusion starts from all");
        assert_eq!(bits("0-7,^2-3"), 0b1111_0011);
        assert_eq!(bits("^0-3,2"), !0b1011);
        assert_eq!(bits("^all,4"), 0b1_0000);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        for (text, wanted) in [
            ("", "empty"),
            ("  ", "empty"),
            ("x", "is not a CPU"),
            ("1,,2", "is not a CPU"),
            ("-1", "is not a CPU"),
            ("1-", "is not a CPU"),
            ("64", "out of range"),
            ("99999999999", "out of range"),
            ("3-1", "backwards"),
            ("0,^0", "leaves no CPU"),
            ("^all", "leaves no CPU"),
            ("all,^0-63", "leaves no CPU"),
        ] {
            let err = parse_cpu_list(text).unwrap_err();
            assert!(err.contains(wanted), "{text:?}: {err}");
        }
    }

    #[test]
    fn formats_as_vcpu_list_shows_them() {
        assert_eq!(format_cpu_set(u64::MAX, 4), "all");
        assert_eq!(format_cpu_set(0b1111, 4), "all");
        assert_eq!(format_cpu_set(0b10_1111, 8), "0-3,5");
        assert_eq!(format_cpu_set(0b1, 2), "0");
        assert_eq!(format_cpu_set(0b1010, 8), "1,3");
        assert_eq!(format_cpu_set(1 << 63 | 1 << 62, 64), "62-63");
        assert_eq!(format_cpu_set(0, 4), "none");
    }

    #[test]
    fn parse_and_format_round_trip() {
        for text in ["0-3,5", "1", "2-3,6-7"] {
            assert_eq!(format_cpu_set(bits(text), 8), text);
        }
    }
}
