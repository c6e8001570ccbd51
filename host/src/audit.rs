//! `bouncer audit`: what the cluster already holds, judged by the policy set
//! the webhook runs.
//!
//! Admission only sees writes; turning a rule from monitor to enforce starts
//! with "what already violates it?". An audit finds the kinds the configured
//! policies govern ([`governed`]), lists them page by page so memory stays
//! bounded on a large cluster, admits each object as the API server would send
//! it for a CREATE, with context lookups answered from live watch caches
//! ([`scan`]), and collects what each policy said ([`findings`]). [`reports`]
//! turns the findings into OpenReports (or wgpolicyk8s) objects in the cluster.

pub mod findings;
pub mod governed;
pub mod reports;
pub mod scan;

pub use findings::{AuditError, AuditFinding, AuditReport};
pub use scan::{AuditOptions, Progress, audit};
