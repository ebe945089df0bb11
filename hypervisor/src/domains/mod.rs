//! Guest domains as the hypervisor keeps track of them: the lifecycle state
//! machine ([`lifecycle`]) and the table of domains with their ids and names
//! ([`registry`]). Pure: the VT-x backend holds the hardware side (EPT,
//! vCPUs) and asks these modules what is allowed.

pub mod lifecycle;
pub mod mailbox;
pub mod registry;
