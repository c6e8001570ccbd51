//! Without a cluster: `bouncer test` ([`testing`]) and `bouncer check`
//! ([`check`]).
//!
//! Both judge exactly what `serve` would: the same
//! [`PolicySet`](crate::admission::PolicySet) and mutate-then-validate chain
//! ([`admission::chain`](crate::admission::chain)), fed requests built the way
//! the API server builds them ([`admission::synthetic`](crate::admission::synthetic)),
//! with the cluster's state taken from the manifests and context files
//! ([`context::Snapshot`](crate::context::Snapshot)).

mod check;
mod compare;
pub mod testing;

pub use check::{CheckReport, CheckSummary, Duplicate, InputError, check};
pub use compare::{CompareReport, compare};
