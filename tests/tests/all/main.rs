//! Cross-crate tests: the host runtime with real components built from `policies/`
//! and from `tests/guests/`, on AdmissionReview bodies captured from a real API server.
//!
//! - `alb_target_type_ip`: the first house rule, allow / deny / warn / mutate;
//! - `house_rules`: every built-in loads with defaults and refuses bad settings by name;
//! - `hostile`: policies that loop, hoard memory, panic, pry or lie;
//! - `chain`: the offline mutate-then-validate chain behind `bouncer test` and `bouncer check`;
//! - `chart`: the Helm chart's default policies are the embedded default;
//! - `compat`: components built against WIT 0.1.1 still load; every built-in describes itself;
//! - `compile_cache`: a restarted engine loads compiled policies without compiling;
//! - `serve`: the HTTPS webhook on a real socket: bodies, modes, bad input, mTLS, reload, rotation;
//! - `shadow`: shadow candidates on live reviews: counted, never in the answer or its time.

mod alb_target_type_ip;
mod chain;
mod chart;
mod compat;
mod compile_cache;
mod hostile;
mod house_rules;
mod serve;
mod shadow;
