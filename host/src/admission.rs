//! Admission logic: decode a review, hand its request to policies as WIT
//! requests, and combine their outcomes into one `AdmissionResponse`.
//!
//! Start from [`review::decode`], [`wit::to_wit`] and [`Decision`].

pub mod chain;
pub mod decision;
pub mod disagreement;
pub mod object;
pub mod patch;
pub mod review;
pub mod set;
pub mod synthetic;
pub mod wit;

pub use chain::{Admission, PolicyResult, admit, admit_for_report};
pub use decision::{Decision, Denial, Effect, FailureMode, Mode, decide_one};
pub use object::RawObject;
pub use review::{Request, ReviewError};
pub use set::{Budget, Endpoint, PolicySet, Record, Reviewed};
