//! YAML from outside (manifests, test suites, configurations, requests,
//! settings) read under bounds, because `bouncer check` runs on pull requests
//! nobody has reviewed yet.
//!
//! serde_yaml alone is not enough: its repetition limit counts events, so one
//! large scalar behind nested aliases (a "billion laughs" of bytes, not of
//! nodes) passes it and expands past gigabytes; and libyaml rescans its stack
//! of flow levels on every token, so deep `[[[[…` nesting costs quadratic
//! time. Here the text's size is checked first, then the depth of its flow
//! collections (a linear scan, before any parser runs), then, when the text
//! has anchors, the size aliases expand it to (a counting pass that builds
//! nothing), and only then is it deserialized.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};

/// The largest YAML text read (a file, a document stream, stdin).
pub const MAX_YAML_BYTES: usize = 32 * 1024 * 1024;
/// The deepest nesting of flow collections (`[…]`, `{…}`).
pub const MAX_FLOW_DEPTH: usize = 64;
/// What aliases may expand a text to, in scalar bytes and nodes counted
/// together: well above any real manifest, far below what hurts.
pub const MAX_EXPANDED_BYTES: u64 = 64 * 1024 * 1024;

/// YAML that is refused, with the line where that is known.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    /// The text is longer than [`MAX_YAML_BYTES`].
    #[error(
        "it is {size} bytes; bouncer reads YAML of at most {MAX_YAML_BYTES} bytes: split it into smaller files"
    )]
    TooLarge {
        /// The text's length.
        size: usize,
    },
    /// Flow collections nest deeper than [`MAX_FLOW_DEPTH`].
    #[error(
        "flow collections (`[…]`, `{{…}}`) nest more than {MAX_FLOW_DEPTH} deep at line {line}; no manifest needs that, so it is refused"
    )]
    TooDeep {
        /// Where the limit was passed.
        line: usize,
    },
    /// Aliases expand the text past [`MAX_EXPANDED_BYTES`].
    #[error(
        "its aliases (`*name`) expand it to more than {MAX_EXPANDED_BYTES} bytes (a YAML bomb?); write the repeated parts out or shrink them"
    )]
    Expands,
    /// The parser's own error.
    #[error(transparent)]
    Parse(#[from] serde_yaml::Error),
}

impl YamlError {
    /// The 1-based line the error is at, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::TooDeep { line } => Some(*line),
            Self::Parse(error) => error.location().map(|l| l.line()),
            Self::TooLarge { .. } | Self::Expands => None,
        }
    }
}

/// Reads at most [`MAX_YAML_BYTES`] of text from `reader`; a longer input is
/// an error, found without holding more than the bound.
///
/// # Errors
/// The read fails, the text is not UTF-8, or it is too long.
pub fn read_bounded(reader: impl std::io::Read) -> std::io::Result<String> {
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(reader, MAX_YAML_BYTES as u64 + 1),
        &mut text,
    )?;
    if text.len() > MAX_YAML_BYTES {
        return Err(std::io::Error::other(format!(
            "it is longer than {MAX_YAML_BYTES} bytes, the most bouncer reads of one file; split it"
        )));
    }
    Ok(text)
}

/// [`read_bounded`] of the file at `path`.
///
/// # Errors
/// As [`read_bounded`], or the file cannot be opened.
pub fn read_file(path: &std::path::Path) -> std::io::Result<String> {
    read_bounded(std::fs::File::open(path)?)
}

/// Deserializes `text` after checking its size, its flow depth and, when it
/// has anchors, what its aliases expand to.
///
/// # Errors
/// [`YamlError`] saying which bound it passes, or the parser's error.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, YamlError> {
    check(text)?;
    Ok(serde_yaml::from_str(text)?)
}

/// The checks of [`from_str`] without the deserializing.
///
/// # Errors
/// As [`from_str`].
pub fn check(text: &str) -> Result<(), YamlError> {
    if text.len() > MAX_YAML_BYTES {
        return Err(YamlError::TooLarge { size: text.len() });
    }
    if let Some(line) = too_deep(text) {
        return Err(YamlError::TooDeep { line });
    }
    if text.contains('&') {
        let budget = std::cell::Cell::new(MAX_EXPANDED_BYTES);
        let measured = de::DeserializeSeed::deserialize(
            Measure { budget: &budget },
            serde_yaml::Deserializer::from_str(text),
        );
        if let Err(error) = measured {
            return Err(if budget.get() == 0 {
                YamlError::Expands
            } else {
                YamlError::Parse(error)
            });
        }
    }
    Ok(())
}

/// The line where flow collections first nest deeper than [`MAX_FLOW_DEPTH`].
///
/// Outside flow collections only a `[` or `{` that can open one counts (at
/// the start of a value: after indentation, `- `, `: ` or `? `), so brackets
/// inside plain scalars such as `echo [a]` do not. Quoted strings and
/// comments are skipped.
fn too_deep(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut line = 1;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut comment = false;
    // Whether a collection may open here: at the start of a value.
    let mut value_start = true;
    let mut previous = '\n';
    for c in text.chars() {
        if c == '\n' {
            line += 1;
            comment = false;
            if depth == 0 {
                quote = None;
            }
            value_start = true;
            previous = c;
            continue;
        }
        if comment {
            continue;
        }
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if q == '"' && c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            previous = c;
            continue;
        }
        match c {
            '#' if previous.is_whitespace() => comment = true,
            '"' | '\'' if value_start || depth > 0 => quote = Some(c),
            '[' | '{' if value_start || depth > 0 => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Some(line);
                }
            }
            ']' | '}' if depth > 0 => depth -= 1,
            _ => {}
        }
        value_start = match c {
            ' ' | '\t' => value_start || matches!(previous, ':' | '-' | '?' | ','),
            '[' | '{' | ',' => depth > 0,
            _ => false,
        };
        previous = c;
    }
    None
}

/// A deserialization target that keeps nothing and counts what passes by,
/// failing once the budget is spent: aliases are replayed through it as
/// serde_yaml expands them.
#[derive(Clone, Copy)]
struct Measure<'a> {
    budget: &'a std::cell::Cell<u64>,
}

impl Measure<'_> {
    fn spend<E: de::Error>(self, bytes: usize) -> Result<(), E> {
        let cost = bytes as u64 + 1;
        let left = self.budget.get();
        if cost > left {
            self.budget.set(0);
            return Err(E::custom("the expansion budget is spent"));
        }
        self.budget.set(left - cost);
        Ok(())
    }
}

impl<'de> de::DeserializeSeed<'de> for Measure<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Measure<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.spend(0)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.spend(8)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.spend(8)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.spend(8)
    }
    fn visit_str<E: de::Error>(self, value: &str) -> Result<(), E> {
        self.spend(value.len())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.spend(0)
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.spend(0)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        de::DeserializeSeed::deserialize(self, deserializer)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        de::DeserializeSeed::deserialize(self, deserializer)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.spend(0)?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.spend(0)?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        let ((), variant) = data.variant_seed(self)?;
        de::VariantAccess::newtype_variant_seed(variant, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_yaml_passes() {
        let text = "a: [1, {b: [2]}]\ncmd: echo [x\nurl: http://x/?a=1&b=2\nlist:\n- &anchor {k: v}\n- *anchor\n";
        let value: serde_json::Value = from_str(text).unwrap();
        assert_eq!(value["list"][1]["k"], "v");
    }

    #[test]
    fn deep_flow_nesting_is_refused_with_its_line() {
        let text = format!("a: 1\nb: {}{}\n", "[".repeat(100), "]".repeat(100));
        let error = from_str::<serde_json::Value>(&text).unwrap_err();
        assert!(matches!(error, YamlError::TooDeep { line: 2 }), "{error}");
        // Brackets in plain scalars and quoted strings are not collections.
        let text = format!("a: x{}\nb: '{}'\n", "[".repeat(100), "[".repeat(100));
        from_str::<serde_json::Value>(&text).unwrap();
    }

    #[test]
    fn a_large_scalar_behind_nested_aliases_is_refused() {
        let big = "x".repeat(64 * 1024);
        let mut text = format!("a0: &a0 \"{big}\"\n");
        for i in 1..12 {
            let p = i - 1;
            text.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}]\n"));
        }
        let error = from_str::<serde_json::Value>(&text).unwrap_err();
        assert!(matches!(error, YamlError::Expands), "{error}");
    }

    #[test]
    fn size_is_checked_first() {
        let text = " ".repeat(MAX_YAML_BYTES + 1);
        assert!(matches!(check(&text), Err(YamlError::TooLarge { .. })));
    }
}
