//! VMX (Intel VT-x) logic that does not touch hardware: capability decoding.

pub mod caps;
pub mod controls;
pub mod exit;
pub mod fields;
