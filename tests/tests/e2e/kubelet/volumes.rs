//! A pod's volumes, written as the kubelet writes them: ConfigMaps and
//! Secrets from the API server, emptyDirs, the service account's token.

use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

use super::set_mode;
use crate::cluster::Cluster;

/// Where a volume goes in the container.
pub(super) struct Mount {
    pub(super) source: PathBuf,
    pub(super) target: PathBuf,
    pub(super) read_only: bool,
}

/// Writes a volume's contents into `dir`.
pub(super) fn write_volume(
    cluster: &Cluster,
    namespace: &str,
    volume: &Value,
    dir: &Path,
    fs_group: Option<u32>,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let files: Vec<(String, Vec<u8>)> = if let Some(name) = volume["configMap"]["name"].as_str() {
        let map = get_json(cluster, namespace, "configmap", name)?;
        map["data"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().unwrap_or_default().as_bytes().to_vec(),
                )
            })
            .collect()
    } else if let Some(name) = volume["secret"]["secretName"].as_str() {
        let secret = get_json(cluster, namespace, "secret", name)?;
        secret["data"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                base64::engine::general_purpose::STANDARD
                    .decode(v.as_str().unwrap_or_default())
                    .map(|bytes| (k.clone(), bytes))
                    .map_err(|e| format!("secret {name} key {k}: {e}"))
            })
            .collect::<Result<_, _>>()?
    } else if volume["emptyDir"].is_object() {
        Vec::new()
    } else {
        return Err(format!("the e2e kubelet cannot make this volume: {volume}"));
    };
    let mode = volume["configMap"]["defaultMode"]
        .as_u64()
        .or_else(|| volume["secret"]["defaultMode"].as_u64())
        .and_then(|m| u32::try_from(m).ok())
        .unwrap_or(0o644);
    for (key, bytes) in files {
        let path = dir.join(&key);
        std::fs::write(&path, bytes).map_err(|e| e.to_string())?;
        set_mode(&path, mode)?;
        chown(&path, Some(0), fs_group).map_err(|e| e.to_string())?;
    }
    // An emptyDir is the pod's to write (group-writable and setgid with fsGroup).
    let dir_mode = if volume["emptyDir"].is_object() {
        0o2775
    } else {
        0o755
    };
    set_mode(dir, dir_mode)?;
    chown(dir, Some(0), fs_group).map_err(|e| e.to_string())
}

pub(super) fn get_json(
    cluster: &Cluster,
    namespace: &str,
    kind: &str,
    name: &str,
) -> Result<Value, String> {
    let output = cluster.kubectl(&["-n", namespace, "get", kind, name, "-o", "json"], None);
    if !output.status.success() {
        return Err(format!(
            "kubectl get {kind} {name}: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| e.to_string())
}

/// The projected service account volume: a token from the TokenRequest
/// API, the cluster's CA and the namespace.
pub(super) fn write_service_account(
    cluster: &Cluster,
    namespace: &str,
    account: &str,
    dir: &Path,
    fs_group: Option<u32>,
) -> Result<(), String> {
    let output = cluster.kubectl(
        &["-n", namespace, "create", "token", account, "--duration=1h"],
        None,
    );
    if !output.status.success() {
        return Err(format!(
            "kubectl create token {account}: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let token = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    for (name, content) in [
        ("token", token),
        ("ca.crt", cluster.ca_pem()),
        ("namespace", namespace.to_owned()),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, content).map_err(|e| e.to_string())?;
        set_mode(&path, 0o644)?;
        chown(&path, Some(0), fs_group).map_err(|e| e.to_string())?;
    }
    set_mode(dir, 0o755)
}

/// Makes `target` and any missing parent, noting each one made.
pub(super) fn make_mount_point(target: &Path, created: &mut Vec<PathBuf>) -> Result<(), String> {
    let mut missing = Vec::new();
    let mut at = Some(target);
    while let Some(dir) = at {
        if dir.exists() {
            break;
        }
        missing.push(dir.to_owned());
        at = dir.parent();
    }
    for dir in missing.into_iter().rev() {
        std::fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        created.push(dir);
    }
    Ok(())
}
