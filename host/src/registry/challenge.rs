//! The `WWW-Authenticate` challenge a registry answers 401 with: where to get
//! a bearer token (the realm) and for which service (RFC 6750, and the Docker
//! token authentication the OCI registries follow).

/// A `WWW-Authenticate: Bearer realm="…",service="…"` challenge.
#[derive(Debug, PartialEq)]
pub(crate) struct Challenge {
    /// Where to ask for a token.
    pub(crate) realm: String,
    /// The service to name in that request.
    pub(crate) service: Option<String>,
}

impl Challenge {
    /// The bearer challenge in `header`; `None` for any other scheme.
    pub(crate) fn parse(header: &str) -> Option<Self> {
        let (scheme, rest) = header.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let mut realm = None;
        let mut service = None;
        for (key, value) in parameters(rest) {
            match key.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(value),
                "service" => service = Some(value),
                _ => {}
            }
        }
        Some(Self {
            realm: realm?,
            service,
        })
    }
}

/// `key="value", key=value` pairs of an authentication challenge.
fn parameters(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        pairs.push((key, value.to_owned()));
        rest = remaining.trim_start().trim_start_matches(',');
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenges_parse() {
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:p:pull""#
            ),
            Some(Challenge {
                realm: "https://auth.example.com/token".into(),
                service: Some("registry.example.com".into()),
            })
        );
        assert_eq!(
            Challenge::parse("bearer realm=https://a/t"),
            Some(Challenge {
                realm: "https://a/t".into(),
                service: None
            })
        );
        assert_eq!(Challenge::parse(r#"Basic realm="Registry""#), None);
        assert_eq!(Challenge::parse("Bearer service=x"), None);
    }
}
