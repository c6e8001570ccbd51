//! Admission logic: decode a review, hand its request to policies as WIT
//! requests, and combine their outcomes into one `AdmissionResponse`.
//!
//! Start from [`review::decode`], [`wit::to_wit`] and [`Decision`].

pub mod decision;
pub mod review;
pub mod wit;

pub use decision::{Decision, Denial, Effect, FailureMode, Mode};
pub use review::{Request, ReviewError};
