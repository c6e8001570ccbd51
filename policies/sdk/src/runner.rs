//! The glue between the WIT exports and a [`Policy`]; called by [`export_policy!`](crate::export_policy).

use std::sync::Once;

use crate::bindings::bouncer::policy::types;
use crate::{Policy, Request, log};

/// Runs `P::validate` for one WIT request.
///
/// A policy error is logged and then ends the instance with a trap, so the host
/// treats it with the policy's failure mode and shows the logged reason.
pub fn run_validate<P: Policy>(raw: types::Request, settings: &str) -> types::Verdict {
    install_panic_hook();
    let request = Request::from_wit(raw);
    let settings = match decode_settings::<P>(settings) {
        Ok(settings) => settings,
        Err(message) => fail(&message),
    };
    match P::validate(&request, &settings) {
        Ok(verdict) => verdict.into_wit(),
        Err(error) => fail(&error.to_string()),
    }
}

/// Decodes settings and runs `P::validate_settings`.
pub fn run_validate_settings<P: Policy>(settings: &str) -> Result<(), String> {
    install_panic_hook();
    P::validate_settings(&decode_settings::<P>(settings)?)
}

/// Builds the WIT metadata of `P`: its own [`Policy::metadata`], the crate's
/// name, description and version, and the JSON Schema of `P::Settings`.
pub fn run_metadata<P: Policy>(crate_defaults: [&str; 3]) -> types::PolicyMetadata {
    install_panic_hook();
    let schema = schemars::schema_for!(P::Settings);
    let schema = serde_json::to_string(&schema).ok();
    P::metadata().into_wit(crate_defaults, schema)
}

fn decode_settings<P: Policy>(text: &str) -> Result<P::Settings, String> {
    let text = if text.trim().is_empty() { "{}" } else { text };
    serde_json::from_str(text).map_err(|e| format!("invalid settings: {e}"))
}

fn fail(message: &str) -> ! {
    log::error(message);
    // Panicking (with `panic = "abort"`) traps; the hook has already logged.
    std::process::abort()
}

/// Routes panic messages to the host log, so a trap is reported with its cause
/// rather than as a bare `unreachable`. The SDK's exports call it; a policy that
/// implements the WIT world by hand should call it first thing.
pub fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| log::error(&format!("policy {info}"))));
    });
}
