//! Checking the ARNs house rules accept: ACM certificates and IAM roles.
//!
//! Only the shape is checked (partition, service, region, account, resource);
//! whether the resource exists is AWS's business, not an admission webhook's.

/// The partitions EKS runs in.
pub const PARTITIONS: &[&str] = &["aws", "aws-cn", "aws-us-gov"];

/// The parts of a well-formed ARN that rules restrict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn<'a> {
    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub partition: &'a str,
    /// The region; empty for IAM.
    pub region: &'a str,
    /// The 12-digit account.
    pub account: &'a str,
    /// What follows the account: `certificate/<id>`, `role/<path>/<name>`.
    pub resource: &'a str,
}

fn split(arn: &str) -> Result<Arn<'_>, String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, _service, region, account, resource] = parts.as_slice() else {
        return Err("an ARN has six parts separated by `:`".into());
    };
    if *prefix != "arn" {
        return Err("an ARN starts with `arn:`".into());
    }
    if !PARTITIONS.contains(partition) {
        return Err(format!(
            "partition `{partition}` is not one of aws, aws-cn, aws-us-gov"
        ));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("account `{account}` is not 12 digits"));
    }
    Ok(Arn {
        partition,
        region,
        account,
        resource,
    })
}

/// Checks `arn:<partition>:acm:<region>:<12 digits>:certificate/<id>`.
pub fn acm_certificate(arn: &str) -> Result<Arn<'_>, String> {
    let parsed = split(arn)?;
    if arn.split(':').nth(2) != Some("acm") {
        return Err("the service is not `acm`".into());
    }
    let region_ok = !parsed.region.is_empty()
        && parsed
            .region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !region_ok {
        return Err(format!("region `{}` is not a region name", parsed.region));
    }
    match parsed.resource.strip_prefix("certificate/") {
        Some(id) if !id.is_empty() && !id.contains('/') => Ok(parsed),
        _ => Err("the resource is not `certificate/<id>`".into()),
    }
}

/// Checks `arn:<partition>:iam::<12 digits>:role/<path/name>`.
pub fn iam_role(arn: &str) -> Result<Arn<'_>, String> {
    let parsed = split(arn)?;
    if arn.split(':').nth(2) != Some("iam") {
        return Err("the service is not `iam`".into());
    }
    if !parsed.region.is_empty() {
        return Err("IAM ARNs have no region (`iam::`)".into());
    }
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-/".contains(&b))
    };
    match parsed.resource.strip_prefix("role/") {
        Some(path) if name_ok(path) && !path.ends_with('/') => Ok(parsed),
        _ => Err("the resource is not `role/<path/name>`".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates() {
        let ok = acm_certificate("arn:aws:acm:us-east-1:123456789012:certificate/abc-123").unwrap();
        assert_eq!(
            (ok.partition, ok.region, ok.account),
            ("aws", "us-east-1", "123456789012")
        );
        assert!(
            acm_certificate("arn:aws-us-gov:acm:us-gov-west-1:123456789012:certificate/x").is_ok()
        );
        for bad in [
            "arn:aws:acm:us-east-1:12345:certificate/x",
            "arn:aws:iam::123456789012:certificate/x",
            "arn:azure:acm:us-east-1:123456789012:certificate/x",
            "arn:aws:acm:us-east-1:123456789012:cert/x",
            "arn:aws:acm::123456789012:certificate/x",
            "not-an-arn",
        ] {
            assert!(acm_certificate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles() {
        assert!(iam_role("arn:aws:iam::123456789012:role/EKS-S3-Reader-Role").is_ok());
        assert!(iam_role("arn:aws-cn:iam::123456789012:role/team/app/reader").is_ok());
        for bad in [
            "arn:aws:iam:us-east-1:123456789012:role/x",
            "arn:aws:iam::123456789012:user/x",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:sts::123456789012:role/x",
        ] {
            assert!(iam_role(bad).is_err(), "{bad}");
        }
    }
}
