//! The policy runtime: loading WebAssembly policy components and evaluating them
//! in sandboxed, fresh instances.
//!
//! Start from [`PolicyEngine`] (one per process), [`Source`] (where a component
//! comes from), and [`Policy`] (a loaded policy with its settings and [`Limits`]),
//! whose [`Policy::evaluate`] turns a WIT [`bindings::Request`] into an [`Outcome`]
//! or a [`PolicyError`].

mod batch;
pub mod bindings;
mod builtin;
mod cache;
mod engine;
mod error;
mod evaluate;
mod imports;
mod limiter;
mod limits;
mod loaded;
pub mod lookup;
mod metadata;
mod quota;
mod reset;
mod source;
pub mod spans;
mod threads;
mod wasi;

pub use batch::{evaluate_all, evaluate_all_here};
pub use builtin::{BUILTINS, Builtin};
pub use engine::{Description, EngineConfig, EngineStats, PolicyEngine, default_cache_dir};
pub use error::{ErrorKind, PolicyError};
pub use evaluate::{Mutation, Outcome, Run, Slot, answered};
pub use limits::{Limits, LogLimits, OutputLimits};
pub use loaded::Policy;
pub use lookup::{
    ContextKind, ContextSource, FieldPath, Gathered, IndexKey, LookupFailure, Query, Queryable,
    Requirement, Selector, too_large,
};
pub use metadata::{GovernedKinds, Metadata, group_kind, operation_name};
pub use reset::{ResetChoice, ResetDecision, ResetPath};
pub use source::{Source, UnknownBuiltin};
