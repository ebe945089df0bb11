//! Architecture-specific code. Only x86_64 with Intel VT-x for now; the
//! unsafe hardware access of the whole hypervisor is confined here.

pub mod x86_64;
