//! Write bouncer admission policies in Rust.
//!
//! A policy is a type that implements [`Policy`], exported with
//! [`export_policy!`]. The SDK hides the WIT plumbing: the request arrives as a
//! [`Request`] whose object decodes into k8s-openapi types (or JSON for kinds
//! k8s-openapi does not know), settings arrive already decoded into your own
//! serde type, and you answer with a [`Verdict`].
//!
//! ```no_run
//! use bouncer_sdk::{Policy, Request, Verdict, export_policy};
//! use bouncer_sdk::k8s_openapi::api::core::v1::Pod;
//!
//! #[derive(serde::Deserialize, schemars::JsonSchema, Default)]
//! #[serde(default, deny_unknown_fields)]
//! struct Settings { forbidden_label: String }
//!
//! struct NoLabel;
//!
//! impl Policy for NoLabel {
//!     type Settings = Settings;
//!
//!     fn validate(request: &Request, settings: &Settings) -> bouncer_sdk::Result<Verdict> {
//!         let Some(pod) = request.object::<Pod>()? else { return Ok(Verdict::allow()) };
//!         let labels = pod.metadata.labels.unwrap_or_default();
//!         if labels.contains_key(&settings.forbidden_label) {
//!             return Ok(Verdict::deny(format!("label {} is not allowed", settings.forbidden_label)));
//!         }
//!         Ok(Verdict::allow())
//!     }
//! }
//!
//! export_policy!(NoLabel);
//! ```
//!
//! Start from [`Policy`], [`Request`] and [`Verdict`]; [`object`] has helpers to
//! edit raw JSON objects for mutation, [`workload`] knows where each kind keeps its
//! pod spec, and [`log`] writes to the host's log.

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod allocator;
pub mod context;
mod findings;
pub mod log;
mod metadata;
pub mod object;
mod request;
mod runner;
mod verdict;
pub mod workload;

pub use k8s_openapi;
pub use schemars;
pub use serde_json;

pub use findings::{Findings, a_few, judge};
pub use metadata::{Metadata, NoSettings};
pub use request::{GroupVersionKind, GroupVersionResource, Operation, Request, UserInfo};
pub use verdict::Verdict;

pub use runner::install_panic_hook;
#[doc(hidden)]
pub use runner::{run_metadata, run_validate, run_validate_settings};

/// Every call runs in a fresh instance: see `allocator.rs` for why built-ins
/// bump-allocate. Turn the `fresh-instance-allocator` feature off to keep Rust's default.
#[cfg(all(
    target_arch = "wasm32",
    target_os = "unknown",
    feature = "fresh-instance-allocator"
))]
#[global_allocator]
static ALLOCATOR: allocator::FreshInstanceAllocator = allocator::FreshInstanceAllocator::new();

/// The generated bindings of the `bouncer:policy` WIT world. Policy authors rarely need them.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "policy",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "bouncer_sdk::bindings",
    });
}

/// An error inside a policy: the object could not be decoded, or the policy's own
/// logic failed. It ends the evaluation as a policy failure (handled by the
/// policy's `failure` mode), which is not the same as a denial.
#[derive(Debug)]
pub struct Error(String);

impl Error {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// The result type of policy functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An admission policy.
///
/// The host creates a fresh instance for every call, so a policy keeps no state
/// between requests; everything it needs is in the request and its settings.
pub trait Policy {
    /// The policy's settings, decoded from the `settings` of its configuration entry.
    /// `{}` is passed when the entry has none, so `#[serde(default)]` gives the defaults.
    /// Its JSON Schema (derived with `#[derive(schemars::JsonSchema)]`) is published
    /// in the policy's metadata; the host checks settings against it first.
    /// Use [`NoSettings`] for a policy without settings.
    type Settings: serde::de::DeserializeOwned + schemars::JsonSchema;

    /// What the policy governs and needs; see [`Metadata`]. Name, description and
    /// version come from `Cargo.toml` unless set here.
    fn metadata() -> Metadata {
        Metadata::new()
    }

    /// Checks settings once, when the configuration is loaded. Returning an error
    /// refuses the configuration with this message. Decoding errors are reported
    /// before this is called.
    fn validate_settings(settings: &Self::Settings) -> std::result::Result<(), String> {
        let _ = settings;
        Ok(())
    }

    /// Judges one admission request.
    fn validate(request: &Request, settings: &Self::Settings) -> Result<Verdict>;
}

/// Exports a [`Policy`] implementation as the component's `policy` world.
///
/// Use it once per crate, with the policy type.
#[macro_export]
macro_rules! export_policy {
    ($policy:ty) => {
        #[doc(hidden)]
        struct __BouncerPolicyExport;

        impl $crate::bindings::Guest for __BouncerPolicyExport {
            fn validate(
                request: $crate::bindings::bouncer::policy::types::Request,
                settings: ::std::string::String,
            ) -> $crate::bindings::bouncer::policy::types::Verdict {
                $crate::run_validate::<$policy>(request, &settings)
            }

            fn validate_settings(settings: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                $crate::run_validate_settings::<$policy>(&settings)
            }

            fn metadata() -> $crate::bindings::bouncer::policy::types::PolicyMetadata {
                $crate::run_metadata::<$policy>([
                    ::core::env!("CARGO_PKG_NAME"),
                    ::core::env!("CARGO_PKG_DESCRIPTION"),
                    ::core::env!("CARGO_PKG_VERSION"),
                ])
            }
        }

        $crate::bindings::export!(__BouncerPolicyExport with_types_in $crate::bindings);
    };
}
