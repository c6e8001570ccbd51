//! ALB listeners and certificates of an Ingress, read from its annotations
//! and class parameters exactly as the AWS Load Balancer Controller (and EKS
//! Auto Mode) reads them (`pkg/ingress/model_build_listener.go`).

use crate::ingress_class::Alb;
use crate::lb::Metadata;
use crate::model::{Provisioner, Source};
use crate::names::{INGRESS_CERTIFICATE_ARN, INGRESS_LISTEN_PORTS};

/// One listener: protocol and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    /// HTTPS (else HTTP).
    pub https: bool,
    /// The port.
    pub port: u16,
}

/// Parses `listen-ports` as the controller does (`computeIngressListenPorts`
/// in `pkg/ingress/model_build_listener.go`): a JSON list of maps from
/// protocol to port, `[{"HTTP": 80}, {"HTTPS": 443}]` or `[{"HTTP": 80, "HTTPS": 443}]`;
/// ports are JSON integers in 1..=65535; a port listed twice keeps its last protocol.
pub fn parse_listen_ports(text: &str) -> Result<Vec<Listener>, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("it is not JSON ({e})"))?;
    let entries = value
        .as_array()
        .ok_or("it is not a JSON list such as [{\"HTTPS\": 443}]")?;
    if entries.is_empty() {
        return Err("it lists no listener".into());
    }
    let mut by_port = std::collections::BTreeMap::new();
    for entry in entries {
        let map = entry
            .as_object()
            .ok_or_else(|| format!("entry {entry} is not a map such as {{\"HTTPS\": 443}}"))?;
        for (protocol, port) in map {
            let https = match protocol.as_str() {
                "HTTPS" => true,
                "HTTP" => false,
                other => return Err(format!("protocol `{other}` is neither HTTP nor HTTPS")),
            };
            let port = port
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("port {port} of {protocol} is not a port number"))?;
            by_port.insert(port, https);
        }
    }
    Ok(by_port
        .into_iter()
        .map(|(port, https)| Listener { https, port })
        .collect())
}

/// The certificate ARNs of the annotation as the controller splits them
/// (`splitCommaSeparatedString` in `pkg/annotations/parser.go`): on commas,
/// trimmed, empty parts dropped.
pub fn certificate_arns(text: &str) -> Vec<&str> {
    text.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect()
}

/// An Ingress's listeners and where they come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listeners {
    /// Protocol and port of each.
    pub listeners: Vec<Listener>,
    /// `listen-ports`, or the provisioner's default (HTTPS 443 with a
    /// certificate, else HTTP 80, whatever `spec.tls` says: `preferTLS`).
    pub from: Source,
}

/// Certificate ARNs and where they come from: the class parameters'
/// `certificateArn` (`certificateARNs` on Auto Mode) when set, the controller
/// then ignoring the annotation (`computeIngressExplicitTLSCertARNs`), else the
/// annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificates {
    /// The ARNs, trimmed.
    pub arns: Vec<String>,
    /// Where they come from.
    pub from: Source,
}

/// The certificates an ALB Ingress names, if any.
pub fn certificates(meta: &Metadata, alb: &Alb) -> Option<Certificates> {
    if let Some(params) = &alb.params
        && !params.spec.certificate_arn.is_empty()
    {
        return Some(Certificates {
            arns: params
                .spec
                .certificate_arn
                .iter()
                .map(|a| a.trim().to_owned())
                .collect(),
            from: Source::ClassParams {
                name: params.name.clone(),
                field: if alb.provisioner == Provisioner::AutoMode {
                    "certificateARNs"
                } else {
                    "certificateArn"
                },
            },
        });
    }
    let arns: Vec<String> = meta
        .annotation(INGRESS_CERTIFICATE_ARN)
        .map(certificate_arns)
        .unwrap_or_default()
        .into_iter()
        .map(str::to_owned)
        .collect();
    (!arns.is_empty()).then_some(Certificates {
        arns,
        from: Source::Annotation(INGRESS_CERTIFICATE_ARN),
    })
}

/// The listeners of an ALB Ingress; `Err` with why the controller cannot read
/// `listen-ports`. IngressClassParams `listeners` only set attributes of the
/// listeners the Ingress declares: ports stay the annotation's.
pub fn listeners(
    meta: &Metadata,
    provisioner: Provisioner,
    has_certificate: bool,
) -> Result<Listeners, String> {
    match meta.annotation(INGRESS_LISTEN_PORTS) {
        Some(text) => Ok(Listeners {
            listeners: parse_listen_ports(text)?,
            from: Source::Annotation(INGRESS_LISTEN_PORTS),
        }),
        None => Ok(Listeners {
            listeners: vec![Listener {
                https: has_certificate,
                port: if has_certificate { 443 } else { 80 },
            }],
            from: Source::Default(provisioner),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_ports_parse_as_the_controller_reads_them() {
        let l = parse_listen_ports(r#"[{"HTTP": 80}, {"HTTPS": 443}]"#).unwrap();
        assert_eq!(
            l,
            [
                Listener {
                    https: false,
                    port: 80
                },
                Listener {
                    https: true,
                    port: 443
                }
            ]
        );
        for bad in [
            "443",
            "[]",
            r#"[{"HTTPS": "443"}]"#,
            r#"[{"TCP": 80}]"#,
            r#"[{"HTTPS": 70000}]"#,
            "[{",
        ] {
            assert!(parse_listen_ports(bad).is_err(), "{bad}");
        }
        let both = parse_listen_ports(r#"[{"HTTP": 80, "HTTPS": 443}]"#).unwrap();
        assert_eq!(both, l, "several keys in one map are several listeners");
        let twice = parse_listen_ports(r#"[{"HTTP": 8080}, {"HTTPS": 8080}]"#).unwrap();
        assert_eq!(
            twice,
            [Listener {
                https: true,
                port: 8080
            }],
            "the last protocol wins"
        );
    }

    #[test]
    fn certificate_arns_split_as_the_controller_splits_them() {
        assert_eq!(certificate_arns(" a , ,b,"), ["a", "b"]);
        assert!(certificate_arns(" , ").is_empty());
    }
}
