//! Recognising static AWS keys: by the name of an entry or variable, written
//! any way people write it (`AWS_ACCESS_KEY_ID`, `aws-access-key-id`,
//! `awsAccessKeyId`), and by the value of an access key ID, whatever its name.
//!
//! Messages say where a key is, never the key.

/// Names (lower case, separators removed) that are AWS keys on their own.
const AWS_NAMES: &[&str] = &[
    "awsaccesskeyid",
    "awsaccesskey",
    "awssecretaccesskey",
    "awssecretkey",
    "awssessiontoken",
];
/// Names of an access key without `aws`: a key only next to a secret key.
const ACCESS_NAMES: &[&str] = &["accesskeyid", "accesskey"];
/// Names of a secret key without `aws`: a key only next to an access key.
const SECRET_NAMES: &[&str] = &["secretaccesskey", "secretkey"];

/// `name` in lower case without `_`, `-`, `.` or spaces.
fn normalise(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether `name` is an AWS key's name on its own (`AWS_SECRET_ACCESS_KEY`, `awsAccessKeyId`).
pub fn is_aws_name(name: &str) -> bool {
    AWS_NAMES.contains(&normalise(name).as_str())
}

/// Whether `text` holds an AWS access key ID: `AKIA` (long-term) or `ASIA`
/// (temporary) and 16 upper-case letters or digits, not inside a longer word.
pub fn has_access_key_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric();
    (0..bytes.len().saturating_sub(19)).any(|i| {
        let candidate = &bytes[i..i + 20];
        (candidate.starts_with(b"AKIA") || candidate.starts_with(b"ASIA"))
            && candidate[4..]
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            && (i == 0 || !word(bytes[i - 1]))
            && bytes.get(i + 20).is_none_or(|b| !word(*b))
    })
}

/// What in a map of entries (a Secret's or a ConfigMap's) carries static
/// keys, each as a phrase for a message.
pub fn in_entries<'a>(entries: impl IntoIterator<Item = (&'a str, String)>) -> Vec<String> {
    let entries: Vec<(&str, String)> = entries.into_iter().collect();
    let named = |names: &[&str]| {
        entries
            .iter()
            .any(|(k, _)| names.contains(&normalise(k).as_str()))
    };
    // `access-key` and `secret-key` together are a key pair; either alone
    // (an app's own `secret-key`) is not.
    let pair = named(ACCESS_NAMES) && named(SECRET_NAMES);
    entries
        .iter()
        .filter_map(|(key, value)| {
            let n = normalise(key);
            if AWS_NAMES.contains(&n.as_str())
                || (pair
                    && (ACCESS_NAMES.contains(&n.as_str()) || SECRET_NAMES.contains(&n.as_str())))
            {
                Some(format!("`{key}`"))
            } else if is_credentials_file(value) {
                Some(format!("an AWS credentials file in `{key}`"))
            } else if has_access_key_id(value) {
                Some(format!("an AWS access key ID (AKIA…/ASIA…) in `{key}`"))
            } else {
                None
            }
        })
        .collect()
}

/// An AWS shared credentials file: an `aws_access_key_id` line.
fn is_credentials_file(value: &str) -> bool {
    value.lines().any(|line| {
        line.split('=')
            .next()
            .is_some_and(|name| name.trim().eq_ignore_ascii_case("aws_access_key_id"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_whatever_the_case_and_separators() {
        for name in [
            "AWS_ACCESS_KEY_ID",
            "aws_access_key_id",
            "aws-access-key-id",
            "awsAccessKeyId",
            "AwsSecretAccessKey",
            "aws.session.token",
        ] {
            assert!(is_aws_name(name), "{name}");
        }
        for name in ["ACCESS_KEY", "SECRET_KEY", "AWS_REGION", "aws_role_arn"] {
            assert!(!is_aws_name(name), "{name}");
        }
    }

    #[test]
    fn access_key_ids_are_found_by_value() {
        assert!(has_access_key_id("AKIAIOSFODNN7EXAMPLE"));
        assert!(has_access_key_id("key=ASIAIOSFODNN7EXAMPLE;"));
        assert!(!has_access_key_id("AKIAIOSFODNN7EXAMPL"), "15 characters");
        assert!(!has_access_key_id("XAKIAIOSFODNN7EXAMPLE"), "inside a word");
        assert!(!has_access_key_id("AKIAIOSFODNN7EXAMPLEX"), "inside a word");
        assert!(!has_access_key_id("akiaiosfodnn7example"), "lower case");
        assert!(!has_access_key_id("AKIA"));
    }

    #[test]
    fn unprefixed_names_count_only_as_a_pair() {
        let pair = in_entries([("access-key", "x".into()), ("secret-key", "y".into())]);
        assert_eq!(pair, ["`access-key`", "`secret-key`"]);
        assert!(in_entries([("secret-key", "django".into())]).is_empty());
        let by_value = in_entries([("id", "AKIAIOSFODNN7EXAMPLE".into())]);
        assert_eq!(by_value, ["an AWS access key ID (AKIA…/ASIA…) in `id`"]);
        assert!(!by_value[0].contains("IOSFODNN7"), "never echoes the key");
    }
}
