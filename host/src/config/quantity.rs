//! Byte quantities as Kubernetes writes them: `512`, `64Ki`, `256Mi`, `1Gi`.

use serde::Deserialize;

/// A byte quantity written as a number or with a binary suffix (`Ki`, `Mi`, `Gi`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(pub usize);

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(usize),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(n) => Ok(Self(n)),
            Raw::Text(text) => parse_quantity(&text).map(Self).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "invalid memory quantity `{text}`: use bytes or a number with Ki, Mi or Gi"
                ))
            }),
        }
    }
}

/// Bytes from `512`, `64Ki`, `256Mi` or `1Gi`; `None` for anything else.
pub fn parse_quantity(text: &str) -> Option<usize> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let n: usize = digits.parse().ok()?;
    let factor = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor)
}
