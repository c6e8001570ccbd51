//! ALB Ingress: listeners, redirect, certificates and TLS policy, read from
//! the annotations exactly as the AWS Load Balancer Controller reads them.

use bouncer_eks::Ingress;
use bouncer_eks::arn::acm_certificate;
use bouncer_eks::ingress_class::Alb;
use bouncer_eks::listeners::Certificates;
use bouncer_eks::model::{self, Source};
use bouncer_eks::names::{
    INGRESS_CERTIFICATE_ARN, INGRESS_LISTEN_PORTS, INGRESS_SSL_POLICY, INGRESS_SSL_REDIRECT,
};
use bouncer_sdk::Findings;

use crate::Settings;

/// Checks an ALB Ingress.
pub fn check(
    object: &str,
    ingress: &Ingress,
    alb: &Alb,
    settings: &Settings,
    findings: &mut Findings,
) {
    let meta = &ingress.metadata;
    let lb = model::ingress(meta, alb);
    // Discovery looks up every host of the rules and of `spec.tls`
    // (`computeIngressInferredTLSCertARNs`; docs/guide/ingress/cert_discovery.md).
    let discoverable = ingress.spec.tls.iter().any(|t| !t.hosts.is_empty())
        || ingress.rule_hosts().iter().any(|h| !h.is_empty());
    let listeners = match lb.listeners {
        Some(Ok(listeners)) => listeners,
        Some(Err(why)) => {
            let text = meta.annotation(INGRESS_LISTEN_PORTS).unwrap_or_default();
            findings.deny(format!(
                "{object} has an unusable `{INGRESS_LISTEN_PORTS}: {text}`: {why}; write it as '[{{\"HTTPS\": 443}}]'"
            ));
            return;
        }
        None => return,
    };
    let declared = !listeners.from.is_default();
    let listeners = listeners.listeners;
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
        let how = if declared {
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
    check_certificates(object, lb.certificates, discoverable, settings, findings);
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
    certificates: Option<Certificates>,
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
    let from = match from {
        Source::Annotation(key) => format!("sets `{key}` to"),
        other => format!("gets from {} the certificate", other.describe()),
    };
    for arn in &arns {
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
