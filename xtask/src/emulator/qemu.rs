//! QEMU: with KVM (`-cpu host`) where the host offers nested VT-x, else TCG
//! with the `qemu64` CPU, which has no VT-x (the "no VT-x" path).
//!
//! No display and no monitor; COM1 goes to the serial log; `-no-reboot`
//! turns a triple fault into an exit instead of a reboot loop. The hypervisor
//! powers off through ACPI (PM1a), which ends QEMU with status 0.

use std::process::Command;

use super::{Emulator, Machine};

/// The command that boots the machine's ISO.
pub fn command(machine: &Machine) -> Command {
    let mut command = Command::new("qemu-system-x86_64");
    command.args(args(machine));
    command
}

fn args(machine: &Machine) -> Vec<String> {
    let accel = match machine.emulator {
        Emulator::QemuKvm => ["-accel", "kvm", "-cpu", "host"],
        Emulator::QemuTcg | Emulator::Bochs => ["-accel", "tcg", "-cpu", "qemu64"],
    };
    let mut args: Vec<String> = accel.iter().map(|arg| (*arg).to_owned()).collect();
    args.extend([
        "-m".to_owned(),
        machine.memory_mib.to_string(),
        "-smp".to_owned(),
        machine.cpus.to_string(),
        "-display".to_owned(),
        "none".to_owned(),
        "-monitor".to_owned(),
        "none".to_owned(),
        "-no-reboot".to_owned(),
        "-serial".to_owned(),
        format!("file:{}", machine.serial_log().display()),
        "-cdrom".to_owned(),
        machine.iso.display().to_string(),
    ]);
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn machine(emulator: Emulator) -> Machine {
        Machine {
            emulator,
            cpus: 1,
            memory_mib: 512,
            iso: PathBuf::from("/t/a.iso"),
            dir: PathBuf::from("/t/s"),
            name: "no-vtx".into(),
            serial_socket: None,
        }
    }

    #[test]
    fn tcg_offers_no_vmx() {
        let args = args(&machine(Emulator::QemuTcg)).join(" ");
        assert_eq!(
            args,
            "-accel tcg -cpu qemu64 -m 512 -smp 1 -display none -monitor none -no-reboot \
             -serial file:/t/s/no-vtx.log -cdrom /t/a.iso"
        );
    }

    #[test]
    fn kvm_passes_the_host_cpu() {
        assert!(
            args(&machine(Emulator::QemuKvm))
                .join(" ")
                .starts_with("-accel kvm -cpu host -m 512")
        );
    }
}
