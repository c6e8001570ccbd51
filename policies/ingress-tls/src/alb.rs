//! ALB Ingress: listeners, redirect, certificates and TLS policy, read from
//! the annotations exactly as the AWS Load Balancer Controller reads them.

use bouncer_eks::Ingress;
use bouncer_eks::arn::acm_certificate;
use bouncer_eks::ingress_class::Alb;
use bouncer_eks::names::{
    INGRESS_CERTIFICATE_ARN, INGRESS_LISTEN_PORTS, INGRESS_SSL_POLICY, INGRESS_SSL_REDIRECT,
};
use bouncer_sdk::Findings;

use crate::Settings;

/// One listener: protocol and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Listener {
    https: bool,
    port: u16,
}

/// Parses `listen-ports` as the controller does (`computeIngressListenPorts`
/// in `pkg/ingress/model_build_listener.go`): a JSON list of maps from
/// protocol to port, `[{"HTTP": 80}, {"HTTPS": 443}]` or `[{"HTTP": 80, "HTTPS": 443}]`;
/// ports are JSON integers in 1..=65535; a port listed twice keeps its last protocol.
fn parse_listen_ports(text: &str) -> Result<Vec<Listener>, String> {
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
fn certificate_arns(text: &str) -> Vec<&str> {
    text.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect()
}

/// Certificate ARNs and where they come from: the class parameters'
/// `certificateArn` when set (the controller then ignores the annotation), else
/// the annotation (`computeIngressExplicitTLSCertARNs` in `model_build_listener.go`).
struct Certificates<'a> {
    arns: Vec<&'a str>,
    /// "sets `…/certificate-arn` to" or "gets from IngressClassParams `x`".
    from: String,
}

fn certificates<'a>(ingress: &'a Ingress, alb: &'a Alb) -> Option<Certificates<'a>> {
    if let Some(params) = &alb.params
        && !params.spec.certificate_arn.is_empty()
    {
        return Some(Certificates {
            arns: params
                .spec
                .certificate_arn
                .iter()
                .map(|a| a.trim())
                .collect(),
            from: format!(
                "gets from IngressClassParams `{}` (`spec.certificateArn`) the certificate",
                params.name
            ),
        });
    }
    let arns = ingress
        .metadata
        .annotation(INGRESS_CERTIFICATE_ARN)
        .map(certificate_arns)
        .filter(|arns| !arns.is_empty())?;
    Some(Certificates {
        arns,
        from: format!("sets `{INGRESS_CERTIFICATE_ARN}` to"),
    })
}

/// Checks an ALB Ingress.
pub fn check(
    object: &str,
    ingress: &Ingress,
    alb: &Alb,
    settings: &Settings,
    findings: &mut Findings,
) {
    let meta = &ingress.metadata;
    let arns = certificates(ingress, alb);
    // Discovery looks up every host of the rules and of `spec.tls`
    // (`computeIngressInferredTLSCertARNs`; docs/guide/ingress/cert_discovery.md).
    let discoverable = ingress.spec.tls.iter().any(|t| !t.hosts.is_empty())
        || ingress.rule_hosts().iter().any(|h| !h.is_empty());
    // IngressClassParams `listeners` only set attributes of listeners the
    // Ingress declares (ingress_class.md, `spec.listeners`): ports stay the annotation's.
    let listeners = match meta.annotation(INGRESS_LISTEN_PORTS) {
        Some(text) => match parse_listen_ports(text) {
            Ok(listeners) => listeners,
            Err(why) => {
                findings.deny(format!(
                    "{object} has an unusable `{INGRESS_LISTEN_PORTS}: {text}`: {why}; write it as '[{{\"HTTPS\": 443}}]'"
                ));
                return;
            }
        },
        // The controller's default: HTTPS 443 when a certificate ARN is given,
        // else HTTP 80, even when `spec.tls` lists hosts (`preferTLS`).
        None if arns.is_some() => vec![Listener {
            https: true,
            port: 443,
        }],
        None => vec![Listener {
            https: false,
            port: 80,
        }],
    };
    let https: Vec<u16> = listeners
        .iter()
        .filter(|l| l.https)
        .map(|l| l.port)
        .collect();
    let http: Vec<u16> = listeners
        .iter()
        .filter(|l| !l.https)
        .map(|l| l.port)
        .collect();
    if https.is_empty() {
        let how = if meta.annotation(INGRESS_LISTEN_PORTS).is_some() {
            format!("`{INGRESS_LISTEN_PORTS}` lists only HTTP")
        } else {
            let tls = if ingress.spec.tls.is_empty() {
                ""
            } else {
                " (`spec.tls` alone does not change that)"
            };
            format!(
                "without `{INGRESS_LISTEN_PORTS}` or `{INGRESS_CERTIFICATE_ARN}` {} listens on HTTP 80{tls}",
                alb.provisioner.name()
            )
        };
        findings.deny(format!(
            "{object} serves no HTTPS: {how}; set `{INGRESS_LISTEN_PORTS}: '[{{\"HTTPS\": 443}}]'` and `{INGRESS_CERTIFICATE_ARN}`"
        ));
        return;
    }
    if !http.is_empty() {
        let redirect = alb.pick(meta, INGRESS_SSL_REDIRECT, "sslRedirectPort", |p| {
            p.ssl_redirect_port.as_deref()
        });
        check_redirect(object, redirect, &http, &https, findings);
    }
    check_certificates(object, arns, discoverable, settings, findings);
    if let Some((policy, from)) = alb.pick(meta, INGRESS_SSL_POLICY, "sslPolicy", |p| {
        p.ssl_policy.as_deref()
    }) && !settings.allowed_ssl_policies.is_empty()
        && !settings.allowed_ssl_policies.iter().any(|p| p == policy)
    {
        let says = match from {
            Some(params) => format!("gets the TLS policy `{policy}` from {params}"),
            None => format!("sets `{INGRESS_SSL_POLICY}: {policy}`"),
        };
        findings.deny(format!(
            "{object} {says}, which is not one of the allowed TLS policies {:?}",
            settings.allowed_ssl_policies
        ));
    }
}

/// An HTTP listener is allowed only when it redirects to an HTTPS one.
fn check_redirect(
    object: &str,
    redirect: Option<(&str, Option<String>)>,
    http: &[u16],
    https: &[u16],
    findings: &mut Findings,
) {
    let ports = http
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let fix = format!("set `{INGRESS_SSL_REDIRECT}: '{}'`", https[0]);
    match redirect {
        None => findings.deny(format!(
            "{object} has an HTTP listener on port {ports} that does not redirect to HTTPS; {fix}"
        )),
        Some((text, params)) => match text.trim().parse::<u16>() {
            Ok(port) if https.contains(&port) => {}
            Ok(port) => findings.deny(format!(
                "{object} redirects HTTP to port {port} ({}), which is not one of its HTTPS listeners; {fix}",
                params.unwrap_or_else(|| format!("`{INGRESS_SSL_REDIRECT}`"))
            )),
            Err(_) => findings.deny(format!(
                "{object} {}, which is not a port number; {fix}",
                match params {
                    Some(params) => format!("gets the redirect port {text:?} from {params}"),
                    None => format!("sets `{INGRESS_SSL_REDIRECT}: {text:?}`"),
                }
            )),
        },
    }
}

fn check_certificates(
    object: &str,
    certificates: Option<Certificates<'_>>,
    discoverable: bool,
    settings: &Settings,
    findings: &mut Findings,
) {
    let Some(Certificates { arns, from }) = certificates else {
        if !(settings.allow_certificate_discovery && discoverable) {
            let discovery = if settings.allow_certificate_discovery {
                " (or give its rules hosts, or list them in `spec.tls`, for the controller to discover certificates)"
            } else {
                ""
            };
            findings.deny(format!(
                "{object} serves HTTPS without a certificate; set `{INGRESS_CERTIFICATE_ARN}` to an ACM certificate ARN{discovery}"
            ));
        }
        return;
    };
    for arn in arns {
        match acm_certificate(arn) {
            Err(why) => findings.deny(format!(
                "{object} {from} `{arn}`, which is not an ACM certificate ARN ({why}); \
                 use arn:<partition>:acm:<region>:<account>:certificate/<id>"
            )),
            Ok(parsed) => {
                if !settings.allowed_accounts.is_empty()
                    && !settings
                        .allowed_accounts
                        .iter()
                        .any(|a| a == parsed.account)
                {
                    findings.deny(format!(
                        "{object} uses certificate `{arn}` from account {}, which is not one of the allowed accounts {:?}",
                        parsed.account, settings.allowed_accounts
                    ));
                }
                if !settings.allowed_regions.is_empty()
                    && !settings.allowed_regions.iter().any(|r| r == parsed.region)
                {
                    findings.deny(format!(
                        "{object} uses certificate `{arn}` from region {}, which is not one of the allowed regions {:?}",
                        parsed.region, settings.allowed_regions
                    ));
                }
            }
        }
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
