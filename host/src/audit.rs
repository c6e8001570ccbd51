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

mod findings;
mod governed;
mod reports;
mod scan;

pub use findings::{AuditError, AuditReport, AuditSummary, Comparison, Counts, Level};
pub use reports::{Format, ReportError, ReportOptions, Written, write as write_reports};
pub use scan::{AuditOptions, Progress, audit};
