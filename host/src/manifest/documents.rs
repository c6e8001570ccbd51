//! Splitting one file's text into documents, each with the line it starts on.
//!
//! serde_yaml's multi-document reader stops at the first broken document and
//! does not say where a document starts, so the text is split on `---` lines
//! here and each document parsed on its own: one bad document is reported with
//! its line and the rest are still read.

use serde_json::Value;

use super::yaml::YamlError;

/// One parsed document and where it starts (1-based).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The first line of content (after the separator and leading comments).
    pub line: usize,
    /// The document, as JSON.
    pub value: Value,
}

/// A document that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentError {
    /// The line of the error, or of the document when the parser gives none.
    pub line: usize,
    /// The parser's message, without its own location.
    pub message: String,
}

/// Parses `text` as a stream of YAML documents, handing each to `each` as
/// soon as it is parsed (empty documents are skipped), so a caller that keeps
/// less than the parsed value never holds a whole file's values at once.
pub fn each_yaml(text: &str, each: &mut dyn FnMut(Result<Document, DocumentError>)) {
    for chunk in split(text) {
        let Some(line) = first_content_line(&chunk.lines, chunk.start) else {
            continue;
        };
        let source = chunk.lines.join("\n");
        match super::yaml::from_str::<Value>(&source) {
            Ok(Value::Null) => {}
            Ok(value) => each(Ok(Document { line, value })),
            Err(error @ (YamlError::TooLarge { .. } | YamlError::Expands)) => {
                each(Err(DocumentError {
                    line,
                    message: error.to_string(),
                }));
            }
            Err(YamlError::TooDeep { line: at }) => each(Err(DocumentError {
                line: chunk.start + at - 1,
                message: format!(
                    "flow collections (`[…]`, `{{…}}`) nest more than {} deep; no manifest needs \
                     that, so it is refused",
                    super::yaml::MAX_FLOW_DEPTH
                ),
            })),
            Err(YamlError::Parse(error)) => each(Err(match template_line(&chunk.lines) {
                Some(at) => DocumentError {
                    line: chunk.start + at,
                    message: "this is an unrendered Helm template (`{{ … }}`), not a manifest; \
                              render it first, e.g. `helm template <chart> | bouncer check -f -`"
                        .into(),
                },
                None => DocumentError {
                    line: error
                        .location()
                        .map_or(line, |at| chunk.start + at.line() - 1),
                    message: without_location(&error.to_string()),
                },
            })),
        }
    }
}

/// The index of the first line with a template action (`{{`), outside comments.
fn template_line(lines: &[&str]) -> Option<usize> {
    lines
        .iter()
        .position(|line| !line.trim_start().starts_with('#') && line.contains("{{"))
}

/// Parses `text` as one or more concatenated JSON values. A syntax error ends
/// the file: JSON has no separator to resume from.
pub fn each_json(text: &str, each: &mut dyn FnMut(Result<Document, DocumentError>)) {
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    loop {
        let start = text[stream.byte_offset()..]
            .find(|c: char| !c.is_whitespace())
            .map_or(text.len(), |skip| stream.byte_offset() + skip);
        match stream.next() {
            None => break,
            Some(Ok(value)) => each(Ok(Document {
                line: line_of(text, start),
                value,
            })),
            Some(Err(error)) => {
                each(Err(DocumentError {
                    line: error.line().max(1),
                    message: without_location(&error.to_string()),
                }));
                break;
            }
        }
    }
}

/// Whether text given without a file name (stdin) looks like JSON.
pub fn looks_like_json(text: &str) -> bool {
    text.trim_start().starts_with(['{', '['])
}

struct Chunk<'a> {
    /// Line number of `lines[0]`.
    start: usize,
    lines: Vec<&'a str>,
}

fn split(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = vec![Chunk {
        start: 1,
        lines: Vec::new(),
    }];
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if is_separator(line) {
            // The separator stays with its document: `--- {a: 1}` is valid YAML.
            chunks.push(Chunk {
                start: number,
                lines: vec![line],
            });
        } else if line.trim_end() == "..." {
            chunks.push(Chunk {
                start: number + 1,
                lines: Vec::new(),
            });
        } else if let Some(chunk) = chunks.last_mut() {
            chunk.lines.push(line);
        }
    }
    chunks
}

fn is_separator(line: &str) -> bool {
    line == "---"
        || line.starts_with("--- ")
        || line.starts_with("---\t")
        || line.trim_end() == "---"
}

/// The first line that holds content, or `None` for a document of only
/// comments and blank lines.
fn first_content_line(lines: &[&str], start: usize) -> Option<usize> {
    lines.iter().enumerate().find_map(|(offset, line)| {
        let trimmed = line.trim();
        let rest = trimmed.strip_prefix("---").map_or(trimmed, str::trim);
        let empty = rest.is_empty() || rest.starts_with('#') || trimmed.starts_with('%');
        (!empty).then_some(start + offset)
    })
}

fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].matches('\n').count() + 1
}

/// Drops a parser's " at line X column Y": callers report the line in their
/// own `file:line` form.
pub fn without_location(message: &str) -> String {
    static LOCATION: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r" at line \d+ column \d+").expect("a valid regex")
    });
    LOCATION.replace_all(message, "").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_yaml(text: &str) -> Vec<Result<Document, DocumentError>> {
        let mut results = Vec::new();
        each_yaml(text, &mut |result| results.push(result));
        results
    }

    fn parse_json(text: &str) -> Vec<Result<Document, DocumentError>> {
        let mut results = Vec::new();
        each_json(text, &mut |result| results.push(result));
        results
    }

    #[test]
    fn an_unrendered_helm_template_says_so_at_its_first_action() {
        let text = "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\n";
        let results = parse_yaml(text);
        let error = results[0].as_ref().unwrap_err();
        assert_eq!(error.line, 4);
        assert!(
            error.message.contains("unrendered Helm template"),
            "{}",
            error.message
        );
    }

    #[test]
    fn documents_carry_their_first_content_line() {
        let text = "# header\napiVersion: v1\nkind: A\n---\n\n# note\nkind: B\n---\n---\nkind: C\n";
        let docs: Vec<_> = parse_yaml(text).into_iter().map(Result::unwrap).collect();
        let lines: Vec<_> = docs.iter().map(|d| d.line).collect();
        assert_eq!(lines, [2, 7, 10]);
        assert_eq!(docs[1].value["kind"], "B");
    }

    #[test]
    fn a_broken_document_is_reported_at_its_line_and_the_rest_still_parse() {
        let text = "kind: A\n---\nkind: B\nmetadata: [unclosed\n---\nkind: C\n";
        let results = parse_yaml(text);
        assert_eq!(results.len(), 3);
        assert_eq!(results[0].as_ref().unwrap().value["kind"], "A");
        let error = results[1].as_ref().unwrap_err();
        assert!((3..=5).contains(&error.line), "line {}", error.line);
        assert!(!error.message.contains("at line"), "{}", error.message);
        assert_eq!(results[2].as_ref().unwrap().value["kind"], "C");
    }

    #[test]
    fn json_streams_give_each_value_its_line() {
        let text = "{\"kind\": \"A\"}\n\n{\n  \"kind\": \"B\"\n}\n";
        let docs: Vec<_> = parse_json(text).into_iter().map(Result::unwrap).collect();
        assert_eq!(docs.iter().map(|d| d.line).collect::<Vec<_>>(), [1, 3]);
        let broken = parse_json("{\"kind\": \"A\"}\n{\"kind\": }\n");
        assert_eq!(broken[1].as_ref().unwrap_err().line, 2);
    }
}
