//! Gateway API `Gateway`: every listener that terminates TLS has a certificate,
//! and plain HTTP listeners need the platform's consent.

use std::collections::BTreeMap;

use bouncer_eks::arn::acm_certificate;
use bouncer_sdk::Findings;
use serde::Deserialize;

use crate::Settings;

/// The parts of a Gateway this rule reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Gateway {
    spec: Spec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Spec {
    listeners: Vec<Listener>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Listener {
    name: String,
    protocol: String,
    port: Option<u32>,
    tls: Option<Tls>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Tls {
    mode: Option<String>,
    certificate_refs: Vec<serde_json::Value>,
    options: BTreeMap<String, String>,
}

/// Checks a Gateway's listeners.
pub fn check(object: &str, gateway: &Gateway, settings: &Settings) -> Findings {
    let mut findings = Findings::new();
    for listener in &gateway.spec.listeners {
        let at = format!(
            "{object} listener `{}` ({} on port {})",
            listener.name,
            listener.protocol,
            listener.port.map_or_else(|| "?".into(), |p| p.to_string())
        );
        match listener.protocol.as_str() {
            "HTTP" if !settings.allow_http_listeners => findings.deny(format!(
                "{at} serves plain HTTP; use protocol HTTPS with `tls.certificateRefs`"
            )),
            "HTTPS" | "TLS" => {
                let tls = listener.tls.as_ref();
                let passthrough = tls.and_then(|t| t.mode.as_deref()) == Some("Passthrough");
                if listener.protocol == "TLS" && passthrough {
                    continue;
                }
                let has_refs = tls.is_some_and(|t| !t.certificate_refs.is_empty());
                let has_arn =
                    tls.is_some_and(|t| t.options.values().any(|v| acm_certificate(v).is_ok()));
                if !has_refs && !has_arn {
                    findings.deny(format!(
                        "{at} terminates TLS without a certificate; add `tls.certificateRefs` \
                         (or an ACM certificate ARN in `tls.options`)"
                    ));
                }
            }
            _ => {}
        }
    }
    findings
}
