//! bouncer: a Kubernetes admission webhook whose rules are sandboxed
//! WebAssembly components.
//!
//! The data flows one way: an `AdmissionReview` is decoded
//! ([`admission::review`]), turned into the WIT request a policy sees
//! ([`admission::wit`]), evaluated by each policy in a fresh wasmtime instance
//! ([`policy::Policy::evaluate`]), and the outcomes are combined into one
//! response ([`admission::Decision`]).
//!
//! Types to start from:
//! - [`policy::PolicyEngine`]: loads components (built-in or `.wasm`), with a compile cache;
//! - [`policy::Policy`]: a loaded policy with its settings and limits;
//! - [`admission::Decision`]: many policy outcomes → one `AdmissionResponse`;
//! - [`authoring`]: scaffolding and building custom policies (`bouncer new`, `bouncer build`);
//! - [`offline`]: the API server's mutate-then-validate chain without a cluster
//!   (`bouncer test` and `bouncer check`);
//! - [`audit`]: the same chain over what a cluster already holds (`bouncer audit`).

pub mod admission;
pub mod audit;
pub mod authoring;
pub mod companion;
pub mod comparison;
pub mod config;
pub mod context;
pub mod crypto;
pub mod findings;
pub mod manifest;
pub mod offline;
pub mod openreports;
pub mod policy;
pub mod registry;
pub mod render;
pub mod server;
pub mod telemetry;
