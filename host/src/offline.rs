//! Without a cluster: what the API server would send for a manifest object, and
//! the mutate-then-validate chain it would run on it.
//!
//! `bouncer test` ([`testing`]) and `bouncer check` ([`check`]) judge exactly
//! what `serve` would: the same [`PolicySet`](crate::admission::PolicySet), fed
//! requests built the way the API server builds them ([`request`]), with the
//! cluster's state taken from the manifests and context files ([`Snapshot`]).

pub mod chain;
pub mod check;
pub mod request;
pub mod snapshot;
pub mod testing;

pub use chain::{Admission, admit, admit_for_report};
pub use request::RequestSpec;
pub use snapshot::Snapshot;
