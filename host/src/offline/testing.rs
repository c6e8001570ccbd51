//! Offline policy tests: suite files of cases, each a request and what must
//! come back, run through the same policy set and admission chain as `serve`.
//!
//! The flow is [`suite::discover`] → [`suite::load`] (parse, resolve, load
//! policies) → [`run::run`] (parallel) → [`report`] / [`junit`]. The file
//! format is [`mod@format`], documented for users in `docs/testing.md`.

pub mod expect;
pub mod format;
pub mod junit;
pub mod report;
pub mod run;
pub mod suite;

pub use run::{CaseOutcome, CaseResult, run};
pub use suite::{Suite, SuiteError, discover, load};
