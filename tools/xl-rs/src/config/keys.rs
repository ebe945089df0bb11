//! The keys xl-rs reads, and the other top-level keys xl.cfg(5) defines.
//!
//! A key in neither list is probably a typo; a key only in [`XL_KEYS`] is valid
//! for xl but not supported by xl-rs yet. Both are reported as warnings.

/// Keys xl-rs turns into the domain configuration.
pub const SUPPORTED_KEYS: &[&str] = &[
    "name",
    "type",
    "builder",
    "memory",
    "maxmem",
    "vcpus",
    "maxvcpus",
    "kernel",
    "ramdisk",
    "cmdline",
    "root",
    "extra",
    "on_poweroff",
    "on_reboot",
    "on_crash",
    "weight",
    "cpu_weight",
    "cap",
    "cpus",
];

/// Other top-level keys of xl.cfg(5) (Xen 4.x), which xl-rs does not support yet.
pub const XL_KEYS: &[&str] = &[
    "acpi",
    "acpi_firmware",
    "acpi_s3",
    "acpi_s4",
    "acpi_laptop_slate",
    "altp2m",
    "apic",
    "bios",
    "bios_path_override",
    "boot",
    "bootloader",
    "bootloader_args",
    "channel",
    "claim_mode",
    "colo",
    "coredump",
    "cpuid",
    "cpus_soft",
    "device_model_args",
    "device_model_args_hvm",
    "device_model_args_pv",
    "device_model_override",
    "device_model_stubdomain_override",
    "device_model_user",
    "device_model_version",
    "device_tree",
    "dm_restrict",
    "disk",
    "driver_domain",
    "dtdev",
    "e820_host",
    "firmware",
    "gfx_passthru",
    "hap",
    "hdtype",
    "hpet",
    "iomem",
    "ioports",
    "irqs",
    "keymap",
    "localtime",
    "max_event_channels",
    "max_grant_frames",
    "max_grant_version",
    "max_maptrack_frames",
    "mca_caps",
    "mmio_hole",
    "nestedhvm",
    "nographic",
    "nomigrate",
    "on_soft_reset",
    "on_watchdog",
    "oos",
    "p9",
    "pae",
    "passthrough",
    "pci",
    "pci_msitranslate",
    "pci_permissive",
    "pci_power_mgmt",
    "pool",
    "pvcalls",
    "pvshim",
    "pvshim_cmdline",
    "pvshim_extra",
    "pvshim_path",
    "rdm",
    "rdm_mem_boundary",
    "rtc_timeoffset",
    "sdl",
    "seclabel",
    "serial",
    "shadow_memory",
    "smbios",
    "soundhw",
    "spice",
    "stdvga",
    "stubdomain_kernel",
    "stubdomain_memory",
    "stubdomain_ramdisk",
    "timer_mode",
    "tsc_mode",
    "usb",
    "usbctrl",
    "usbdev",
    "usbdevice",
    "usbversion",
    "uuid",
    "vcpu_hard_affinity",
    "vcpu_soft_affinity",
    "vdispl",
    "vfb",
    "vga",
    "videoram",
    "vif",
    "viridian",
    "virtio",
    "vkb",
    "vnc",
    "vncconsole",
    "vncdisplay",
    "vnclisten",
    "vncpasswd",
    "vncunused",
    "vnuma",
    "vpmu",
    "vsnd",
    "vtpm",
    "vuart",
    "xen_platform_pci",
];

/// What kind of key `key` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// xl-rs reads it.
    Supported,
    /// An xl.cfg key xl-rs does not support yet.
    XlOnly,
    /// Not an xl.cfg key.
    Unknown,
}

/// Classifies a key.
#[must_use]
pub fn classify(key: &str) -> KeyKind {
    if SUPPORTED_KEYS.contains(&key) {
        KeyKind::Supported
    } else if XL_KEYS.contains(&key) {
        KeyKind::XlOnly
    } else {
        KeyKind::Unknown
    }
}
