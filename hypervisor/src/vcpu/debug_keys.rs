//! Debug keys on the serial console, as in Xen: three Ctrl-A in a row, then
//! one key that the hypervisor acts on (`e`: VM exit statistics, `h`: the
//! list of keys). The console is shared with dom0, which keeps receiving
//! every byte; the hypervisor only watches what dom0 reads from the UART.

/// Ctrl-A.
const CTRL_A: u8 = 0x01;

/// A key the hypervisor acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebugKey {
    /// `e`: print the VM exit statistics so far.
    ExitStats,
    /// `h`: print the keys.
    Help,
    /// `r`: every vCPU of the domain prints its registers and virtual APIC
    /// at its next exit.
    VcpuState,
    /// Any other key after the three Ctrl-A.
    Unknown(u8),
}

/// The keys and what they do, for the help text.
pub const HELP: &[(char, &str)] = &[
    ('e', "VM exit statistics so far"),
    ('r', "each vCPU's registers and virtual APIC"),
    ('h', "this list"),
];

/// Watches the bytes read from the console for the sequence.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KeySequence {
    ctrl_a: u8,
    armed: bool,
}

impl KeySequence {
    /// Nothing seen yet.
    pub const fn new() -> Self {
        Self {
            ctrl_a: 0,
            armed: false,
        }
    }

    /// The next byte read; a key once the sequence is complete.
    pub fn feed(&mut self, byte: u8) -> Option<DebugKey> {
        if self.armed {
            self.armed = false;
            return Some(match byte {
                b'e' => DebugKey::ExitStats,
                b'h' => DebugKey::Help,
                b'r' => DebugKey::VcpuState,
                other => DebugKey::Unknown(other),
            });
        }
        if byte == CTRL_A {
            self.ctrl_a += 1;
            if self.ctrl_a == 3 {
                self.ctrl_a = 0;
                self.armed = true;
            }
        } else {
            self.ctrl_a = 0;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(k: &mut KeySequence, bytes: &[u8]) -> Vec<DebugKey> {
        bytes.iter().filter_map(|&b| k.feed(b)).collect()
    }

    #[test]
    fn three_ctrl_a_then_a_key() {
        let mut k = KeySequence::new();
        assert_eq!(
            feed_all(&mut k, b"ls\n\x01\x01\x01e"),
            [DebugKey::ExitStats]
        );
        assert_eq!(
            feed_all(&mut k, b"\x01\x01\x01h\x01\x01\x01z"),
            [DebugKey::Help, DebugKey::Unknown(b'z')]
        );
        assert_eq!(feed_all(&mut k, b"\x01\x01\x01r"), [DebugKey::VcpuState]);
        // The key after the sequence may itself be Ctrl-A; it does not count
        // towards a new sequence.
        assert_eq!(
            feed_all(&mut k, b"\x01\x01\x01\x01\x01\x01"),
            [DebugKey::Unknown(1)]
        );
    }

    #[test]
    fn anything_in_between_resets() {
        let mut k = KeySequence::new();
        assert_eq!(feed_all(&mut k, b"\x01\x01x\x01e\x01\x01"), []);
        assert_eq!(feed_all(&mut k, b"\x01e"), [DebugKey::ExitStats]);
    }
}
