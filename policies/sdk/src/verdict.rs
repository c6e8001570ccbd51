//! A policy's answer, built with small constructors.

use serde::Serialize;

use crate::bindings::bouncer::policy::types;
use crate::{Error, Result};

/// A policy's answer to one request: allow or deny, with optional warnings and mutation.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Why the request was denied; shown to the user by kubectl.
    pub message: Option<String>,
    /// HTTP status code of a denial; the host uses 403 when `None`.
    pub code: Option<u16>,
    /// Warnings for the client, allowed or not.
    pub warnings: Vec<String>,
    /// The whole object after mutation, as JSON, when the policy changed it.
    pub patched: Option<serde_json::Value>,
}

impl Verdict {
    /// Lets the request through unchanged.
    pub fn allow() -> Self {
        Self {
            allowed: true,
            message: None,
            code: None,
            warnings: Vec::new(),
            patched: None,
        }
    }

    /// Refuses the request; `message` should say what was found and how to fix it.
    pub fn deny(message: impl Into<String>) -> Self {
        Self {
            allowed: false,
            message: Some(message.into()),
            ..Self::allow()
        }
    }

    /// Lets the request through with the object replaced by `patched`.
    ///
    /// Pass the whole object; the host computes the JSONPatch. A mutation must be
    /// idempotent: run on its own output it must change nothing.
    pub fn mutate(patched: &impl Serialize) -> Result<Self> {
        let patched = serde_json::to_value(patched)
            .map_err(|e| Error::new(format!("cannot encode the patched object: {e}")))?;
        Ok(Self {
            patched: Some(patched),
            ..Self::allow()
        })
    }

    /// Sets the HTTP status code of a denial (403 when unset).
    pub fn with_code(mut self, code: u16) -> Self {
        self.code = Some(code);
        self
    }

    /// Adds a warning, shown by kubectl whether or not the request is allowed.
    pub fn with_warning(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }

    pub(crate) fn into_wit(self) -> types::Verdict {
        types::Verdict {
            allowed: self.allowed,
            message: self.message,
            code: self.code,
            warnings: self.warnings,
            mutation: self
                .patched
                .map(|object| types::Mutation::PatchedObject(object.to_string())),
        }
    }
}
