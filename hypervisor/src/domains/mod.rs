//! Guest domains as the hypervisor keeps track of them: the lifecycle state
//! machine ([`lifecycle`]), the table of domains with their ids and names
//! ([`registry`]), each vCPU's mailbox and published APIC addressing
//! ([`mailbox`]) and which vCPUs an interrupt message goes to
//! ([`irq_route`]). Pure: the VT-x backend holds the hardware side (EPT,
//! vCPUs) and asks these modules what is allowed.

pub mod irq_route;
pub mod lifecycle;
pub mod mailbox;
pub mod registry;
