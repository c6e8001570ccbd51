//! The shape of an OpenReports result, shared by everything bouncer writes
//! into a cluster as a report: `audit --write-reports` and the server's live
//! report of shadow disagreements.

use serde_json::{Value, json};

use crate::findings::ObjectRef;

/// The label on every report bouncer writes, and the selector that finds them.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "bouncer");
/// Longest message kept in a result, in bytes.
pub const MAX_MESSAGE: usize = 1024;

/// One result of a report.
pub struct ReportResult<'a> {
    /// Who judged (`bouncer`, or a shadow's source).
    pub source: &'a str,
    /// The policy.
    pub policy: &'a str,
    /// `pass`, `fail`, `warn`, `error` or `skip`.
    pub result: &'a str,
    /// Whether it counts (monitor-mode findings and shadows do not).
    pub scored: bool,
    /// What was found; shortened to [`MAX_MESSAGE`].
    pub message: String,
    /// The object.
    pub object: &'a ObjectRef,
    /// Free-form string properties.
    pub properties: Value,
}

impl ReportResult<'_> {
    /// The result as JSON, stamped `now` ([`time_now`]).
    pub fn to_json(&self, now: &Value) -> Value {
        let mut message = self.message.clone();
        shorten(&mut message);
        let object = self.object;
        let mut resource = json!({
            "apiVersion": object.api_version,
            "kind": object.kind,
            "name": object.name,
        });
        if let Some(ns) = &object.namespace {
            resource["namespace"] = json!(ns);
        }
        if let Some(uid) = &object.uid {
            resource["uid"] = json!(uid);
        }
        json!({
            "source": self.source,
            "policy": self.policy,
            "result": self.result,
            "scored": self.scored,
            "message": message,
            "timestamp": now,
            "resources": [resource],
            "properties": self.properties,
        })
    }
}

/// Cuts `message` to [`MAX_MESSAGE`] bytes on a character boundary.
fn shorten(message: &mut String) {
    *message = cut(std::mem::take(message), MAX_MESSAGE);
}

/// `text` cut to `max` bytes (at least 4) on a character boundary, ending in
/// `...` when it was cut.
pub fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        text.truncate(text.floor_char_boundary(max.saturating_sub(3)));
        text.push_str("...");
    }
    text
}

/// A result's timestamp for now.
pub fn time_now() -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    json!({"seconds": now.as_secs(), "nanos": 0})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_message_is_cut_on_a_character_boundary() {
        let mut message = "é".repeat(MAX_MESSAGE);
        shorten(&mut message);
        assert!(message.len() <= MAX_MESSAGE, "{}", message.len());
        assert!(message.ends_with("..."));
        let mut short = "fine".to_owned();
        shorten(&mut short);
        assert_eq!(short, "fine");
    }
}
