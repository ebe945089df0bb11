//! VMX (Intel VT-x) logic that does not touch hardware: capability decoding.

pub mod caps;
