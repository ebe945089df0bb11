//! The panic handler: print where and why, then stop this CPU. A panic is a
//! hypervisor bug; guest or dom0 input must never cause one.

use crate::arch::x86_64::{cpu, percpu};
use crate::logger::write_raw;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let cpu = percpu::current_index();
    match info.location() {
        Some(l) => write_raw(format_args!(
            "\n*** PANIC on cpu{cpu} at {}:{}:{}: {}\n*** cpu{cpu} stopped.\n",
            l.file(),
            l.line(),
            l.column(),
            info.message()
        )),
        None => write_raw(format_args!(
            "\n*** PANIC on cpu{cpu}: {}\n*** cpu{cpu} stopped.\n",
            info.message()
        )),
    }
    percpu::current()
        .stopped
        .store(true, core::sync::atomic::Ordering::Release);
    cpu::halt_forever()
}
