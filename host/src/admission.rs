//! Admission logic: decode a review, hand its request to policies as WIT
//! requests, and combine their outcomes into one `AdmissionResponse`.
//!
//! Start from [`review::decode`], [`wit::to_wit`] and [`Decision`].

mod chain;
mod decision;
mod disagreement;
mod dispatch;
pub mod exceptions;
mod load_error;
pub mod loader;
mod matching;
mod object;
pub mod patch;
pub mod review;
mod set;
pub mod shadow;
mod sources;
pub mod synthetic;
pub mod wit;

pub use chain::{Admission, admit, admit_for_report};
pub use decision::{Decision, Denial, Effect, PolicyResult, Verdict, Warning};
pub use dispatch::{Budget, EXCEPTION_JUDGE, Endpoint, Reviewed};
pub use load_error::{EntryError, LoadError, LoadFailure};
pub use loader::Loaded;
pub use object::RawObject;
pub use review::{Request, ReviewError};
pub use set::{Candidate, Entry, PolicySet};
pub use sources::Pulls;
pub use synthetic::RequestSpec;
