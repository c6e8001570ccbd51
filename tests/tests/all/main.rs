//! Cross-crate tests: the host runtime with real components built from `policies/`
//! and from `tests/guests/`, on AdmissionReview bodies captured from a real API server.
//!
//! - `alb_target_type_ip`: the first house rule, allow / deny / warn / mutate;
//! - `hostile`: policies that loop, hoard memory, panic, pry or lie;
//! - `compile_cache`: a restarted engine loads compiled policies without compiling.

mod alb_target_type_ip;
mod compile_cache;
mod hostile;
