//! A container's environment, as the kubelet builds it: the `kubernetes`
//! Service's variables, then the container's, references resolved.

use serde_json::Value;

use super::text;
use crate::cluster::Cluster;

/// The container's environment, as the kubelet builds it.
pub(super) fn environment(
    cluster: &Cluster,
    namespace: &str,
    pod: &str,
    ip: &str,
    container: &Value,
) -> Result<Vec<(String, String)>, String> {
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOSTNAME".into(), pod.to_owned()),
        ("HOME".into(), "/".into()),
        // The `kubernetes` Service, here the API server itself.
        ("KUBERNETES_SERVICE_HOST".into(), "127.0.0.1".into()),
        (
            "KUBERNETES_SERVICE_PORT".into(),
            cluster.api_port.to_string(),
        ),
    ];
    for var in container["env"].as_array().into_iter().flatten() {
        let name = text(&var["name"])?;
        let value = if let Some(value) = var["value"].as_str() {
            expand(value, &env)
        } else if let Some(path) = var["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            match path {
                "metadata.name" => pod.to_owned(),
                "metadata.namespace" => namespace.to_owned(),
                "status.podIP" | "status.hostIP" => ip.to_owned(),
                other => return Err(format!("env {name}: fieldRef {other} is not supported")),
            }
        } else if let Some(resource) = var["valueFrom"]["resourceFieldRef"]["resource"].as_str() {
            let (section, key) = resource
                .split_once('.')
                .ok_or_else(|| format!("env {name}: resource {resource}"))?;
            let quantity = container["resources"][section][key]
                .as_str()
                .ok_or_else(|| format!("env {name}: the container sets no {resource}"))?;
            bytes(quantity)
                .ok_or_else(|| format!("env {name}: cannot read the quantity {quantity}"))?
                .to_string()
        } else {
            String::new()
        };
        env.retain(|(n, _)| *n != name);
        env.push((name, value));
    }
    Ok(env)
}

/// `$(VAR)` references to earlier variables replaced by their values, as
/// the kubelet does (`$$` escapes; unknown references stay as written).
pub(super) fn expand(text: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some((name, tail)) = after
            .strip_prefix('(')
            .and_then(|a| a.split_once(')'))
            .filter(|(name, _)| env.iter().any(|(n, _)| n == name))
        {
            let value = env.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v);
            out.push_str(value.map_or("", String::as_str));
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// A Kubernetes quantity in bytes (`384Mi`, `1G`, `1024`).
fn bytes(quantity: &str) -> Option<u64> {
    let units: [(&str, u64); 8] = [
        ("Ki", 1 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
        ("k", 1_000),
        ("M", 1_000_000),
        ("G", 1_000_000_000),
        ("T", 1_000_000_000_000),
    ];
    for (suffix, factor) in units {
        if let Some(number) = quantity.strip_suffix(suffix) {
            return number.parse::<u64>().ok().map(|n| n * factor);
        }
    }
    quantity.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_references_expand_as_the_kubelet_expands_them() {
        let env = vec![("POD_NAME".to_owned(), "p-1".to_owned())];
        assert_eq!(expand("k8s.pod.name=$(POD_NAME)", &env), "k8s.pod.name=p-1");
        assert_eq!(expand("$$(POD_NAME) $(NOPE)", &env), "$(POD_NAME) $(NOPE)");
        assert_eq!(bytes("384Mi"), Some(384 << 20));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
    }
}
