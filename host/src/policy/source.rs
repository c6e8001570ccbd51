//! Where a policy's component comes from: built into the binary, or a file.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

use super::builtin::{self, Builtin};
use super::error::PolicyError;

/// The origin of a policy component.
#[derive(Debug, Clone)]
pub enum Source {
    /// A house rule embedded in the binary (`builtin:<name>`).
    Builtin(&'static Builtin),
    /// A `.wasm` component file.
    File(PathBuf),
    /// Component bytes already in memory.
    Bytes(Vec<u8>),
}

/// A source string named no known built-in policy.
#[derive(Debug, thiserror::Error)]
#[error("unknown built-in policy `{name}`; `bouncer policies` lists them (known: {known})")]
pub struct UnknownBuiltin {
    /// The name that was asked for.
    pub name: String,
    /// The names that exist.
    pub known: String,
}

impl Source {
    /// Parses `builtin:<name>`, or a path to a component file.
    pub fn parse(text: &str) -> Result<Self, UnknownBuiltin> {
        match text.strip_prefix("builtin:") {
            Some(name) => Self::builtin(name),
            None => Ok(Self::File(PathBuf::from(text))),
        }
    }

    /// The built-in policy called `name`.
    pub fn builtin(name: &str) -> Result<Self, UnknownBuiltin> {
        builtin::find(name)
            .map(Self::Builtin)
            .ok_or_else(|| UnknownBuiltin {
                name: name.to_owned(),
                known: builtin::BUILTINS
                    .iter()
                    .map(|b| b.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The component's bytes; `policy` names the policy in the error.
    pub fn bytes(&self, policy: &str) -> Result<Cow<'_, [u8]>, PolicyError> {
        match self {
            Self::Builtin(builtin) => Ok(Cow::Borrowed(builtin.component)),
            Self::Bytes(bytes) => Ok(Cow::Borrowed(bytes)),
            Self::File(path) => {
                std::fs::read(path)
                    .map(Cow::Owned)
                    .map_err(|source| PolicyError::Read {
                        policy: policy.to_owned(),
                        path: path.clone(),
                        source,
                    })
            }
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Builtin(builtin) => write!(f, "builtin:{}", builtin.name),
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Bytes(bytes) => write!(f, "<{} bytes>", bytes.len()),
        }
    }
}
