//! Offline policy tests: suite files of cases, each a request and what must
//! come back, run through the same policy set and admission chain as `serve`.
//!
//! The flow is [`suite::discover`] → [`suite::load`] (parse, resolve, load
//! policies) → [`run::run`] (parallel) → `render::test` (text, JUnit). The file
//! format is [`mod@format`], documented for users in `docs/testing.md`.

mod expect;
mod format;
mod run;
mod suite;

pub use expect::Failure;
pub use run::{CaseOutcome, CaseResult, case_id, run};
pub use suite::{Suite, SuiteError, discover, load};
