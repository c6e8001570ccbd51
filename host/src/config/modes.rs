//! How an entry's verdicts and failures count: enforce or monitor, fail
//! closed or open.

/// Whether a policy's denials are enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A denial refuses the request.
    #[default]
    Enforce,
    /// A denial becomes a warning `"<policy>: <message>"`; the request is allowed.
    Monitor,
}

impl Mode {
    /// Its name in the configuration, metrics and traces.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enforce => "enforce",
            Self::Monitor => "monitor",
        }
    }
}

/// What a policy's own failure (trap, deadline, bad verdict) means for the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureMode {
    /// Refuse the request with a message naming the policy and the failure.
    #[default]
    Closed,
    /// Allow the request with a warning.
    Open,
}
