//! A kubelet for one pod: the container of a Deployment's pod template, as
//! the API server stores it after `helm install`, run on this machine as a
//! kubelet would run it, so the chart's command, args, env, volumes, ports,
//! probes, security context and preStop hook are exercised, not only rendered.
//!
//! What it does, in the kubelet's order:
//! - volumes: each ConfigMap and Secret read from the API server and written
//!   out (group-owned by `fsGroup`), each emptyDir made, the service account's
//!   token got by TokenRequest (`kubectl create token`) with the cluster CA and
//!   namespace; each bind-mounted at its `mountPath` (read-only where the mount
//!   says) in a mount namespace of the container's own, whose root is then
//!   made read-only when `readOnlyRootFilesystem` says so. The mount points are
//!   made on this machine's filesystem when missing (empty directories,
//!   removed again when the pod goes);
//! - env: the `kubernetes` Service's variables, then the container's, with
//!   `fieldRef`, `resourceFieldRef` and `$(VAR)` references resolved;
//! - the process: the image's entrypoint (read from the repository's
//!   `Dockerfile`) is the `bouncer` binary of this build, run with the
//!   container's args as `runAsUser`/`runAsGroup` with `fsGroup` as a
//!   supplementary group, no capabilities and no privilege escalation
//!   (`seccompProfile` is not applied);
//! - probes: startup, then readiness and liveness, polled over HTTP at their
//!   ports and paths on their periods; readiness drives the pod's endpoint in
//!   an EndpointSlice of each Service that selects it, as the EndpointSlice
//!   controller would, so the API server reaches the webhook through the
//!   chart's Service;
//! - stop: the endpoint turns terminating, the preStop hook runs, then
//!   SIGTERM, and SIGKILL after `terminationGracePeriodSeconds`.

use std::ffi::CString;
use std::os::unix::fs::{PermissionsExt as _, chown};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use super::cluster::Cluster;

/// A running pod; stopped (without its hook) when dropped.
pub struct Pod {
    /// The pod's name (its `POD_NAME`).
    pub name: String,
    /// This machine's address the pod is reached at (its "pod IP").
    pub ip: String,
    /// The container's output.
    pub log: PathBuf,
    container: Value,
    grace: Duration,
    child: Option<Child>,
    slices: Arc<Slices>,
    probing: Arc<Probing>,
    prober: Option<std::thread::JoinHandle<()>>,
    created: Vec<PathBuf>,
    _root: tempfile::TempDir,
}

/// What the probes saw.
#[derive(Default)]
pub struct Probing {
    stop: AtomicBool,
    /// The startup probe has succeeded.
    pub started: AtomicBool,
    /// The readiness probe's last result.
    pub ready: AtomicBool,
    /// Times the liveness probe reached its failure threshold (each a
    /// restart a kubelet would make).
    pub liveness_failures: AtomicU32,
    /// Times the pod turned from ready to not ready while running.
    pub unready_spells: AtomicU32,
}

/// How a pod stopped.
pub struct Stopped {
    /// Its exit status.
    pub status: ExitStatus,
    /// Whether it had to be killed at the end of its grace period.
    pub killed: bool,
    /// From the stop's start (endpoint terminating) to the exit.
    pub took: Duration,
}

impl Pod {
    /// Runs the pod of `deployment` (as the API server returns it) with
    /// `binary` as the image's entrypoint; its output goes to `log`.
    pub fn run(
        cluster: &Cluster,
        deployment: &Value,
        binary: &Path,
        log: &Path,
    ) -> Result<Self, String> {
        let namespace = text(&deployment["metadata"]["namespace"])?;
        let template = &deployment["spec"]["template"];
        let spec = &template["spec"];
        let container = spec["containers"][0].clone();
        if spec["containers"].as_array().map_or(0, Vec::len) != 1 {
            return Err("the e2e kubelet runs pods of one container".into());
        }
        let name = format!(
            "{}-e2e-{}",
            text(&deployment["metadata"]["name"])?,
            std::process::id()
        );
        let ip = host_ip()?;
        let root = tempfile::Builder::new()
            .prefix("bouncer-pod-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        set_mode(root.path(), 0o755)?;
        let security = Security::of(spec, &container)?;

        // Volumes, then the mounts that place them.
        let mut mounts = Vec::new();
        for mount in container["volumeMounts"].as_array().into_iter().flatten() {
            let volume_name = text(&mount["name"])?;
            let volume = spec["volumes"]
                .as_array()
                .and_then(|v| v.iter().find(|v| v["name"] == volume_name.as_str()))
                .ok_or_else(|| format!("volumeMount {volume_name} names no volume"))?;
            let dir = root.path().join("volumes").join(&volume_name);
            write_volume(cluster, &namespace, volume, &dir, security.fs_group)?;
            mounts.push(Mount {
                source: dir,
                target: PathBuf::from(text(&mount["mountPath"])?),
                read_only: mount["readOnly"] == true,
            });
        }
        if spec["automountServiceAccountToken"] != false {
            let account = spec["serviceAccountName"].as_str().unwrap_or("default");
            let dir = root.path().join("volumes/kube-api-access");
            write_service_account(cluster, &namespace, account, &dir, security.fs_group)?;
            mounts.push(Mount {
                source: dir,
                target: PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount"),
                read_only: true,
            });
        }
        let mut created = Vec::new();
        for mount in &mounts {
            make_mount_point(&mount.target, &mut created)?;
        }

        // The image: the Dockerfile's entrypoint is this build's binary.
        let (entrypoint, cmd) = image_entrypoint()?;
        let image_binary = root.path().join("image-entrypoint");
        std::fs::copy(binary, &image_binary).map_err(|e| format!("copy bouncer: {e}"))?;
        set_mode(&image_binary, 0o755)?;
        let env = environment(cluster, &namespace, &name, &ip, &container)?;
        let args: Vec<String> = match container["args"].as_array() {
            Some(args) => args
                .iter()
                .map(|a| a.as_str().map(|a| expand(a, &env)))
                .collect::<Option<_>>()
                .ok_or("container args must be strings")?,
            None => cmd,
        };
        if container["command"].is_array() {
            return Err("the e2e kubelet runs the image's entrypoint only".into());
        }

        let output = std::fs::File::create(log).map_err(|e| e.to_string())?;
        let mut command = Command::new(&image_binary);
        command
            .arg0(&entrypoint)
            .args(&args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(output.try_clone().map_err(|e| e.to_string())?)
            .stderr(output);
        let isolation = Isolation::new(&mounts, &security)?;
        // SAFETY: `enter` only makes system calls on memory prepared before
        // the fork (no allocation, no locks), as `pre_exec` requires.
        unsafe {
            command.pre_exec(move || isolation.enter());
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start the pod's container: {e}"))?;

        let slices = Arc::new(Slices::of(
            cluster, &namespace, template, &container, &name, &ip,
        )?);
        slices.publish(false, false)?;
        let probing = Arc::new(Probing::default());
        let prober = {
            let (probing, slices, container, ip) = (
                probing.clone(),
                slices.clone(),
                container.clone(),
                ip.clone(),
            );
            std::thread::spawn(move || probe(&container, &ip, &probing, &slices))
        };
        let grace =
            Duration::from_secs(spec["terminationGracePeriodSeconds"].as_u64().unwrap_or(30));
        Ok(Self {
            name,
            ip,
            log: log.to_owned(),
            container,
            grace,
            child: Some(child),
            slices,
            probing,
            prober: Some(prober),
            created,
            _root: root,
        })
    }

    /// What the probes saw so far.
    pub fn probing(&self) -> &Probing {
        &self.probing
    }

    /// The process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The container port named `name`.
    pub fn port(&self, name: &str) -> Option<u16> {
        named_port(&self.container, &json!(name))
    }

    /// Waits until the readiness probe passes (and the endpoint is ready).
    pub fn wait_ready(&mut self, within: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        while !self.probing.ready.load(Ordering::Acquire) {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(format!(
                    "the pod's container exited ({status}) before it was ready; its log:\n{}",
                    tail(&self.log)
                ));
            }
            if started.elapsed() > within {
                return Err(format!(
                    "the pod was not ready within {within:?}; its log:\n{}",
                    tail(&self.log)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(started.elapsed())
    }

    /// Stops the pod as a kubelet does on deletion: the endpoint turns
    /// terminating, the preStop hook runs, SIGTERM, and SIGKILL once the
    /// grace period is over.
    pub fn stop(mut self) -> Result<Stopped, String> {
        let started = Instant::now();
        self.end_probes();
        self.slices.publish(false, true)?;
        let pre_stop = &self.container["lifecycle"]["preStop"];
        if let Some(seconds) = pre_stop["sleep"]["seconds"].as_u64() {
            std::thread::sleep(Duration::from_secs(seconds));
        } else if !pre_stop.is_null() {
            return Err(format!(
                "the e2e kubelet runs sleep preStop hooks only: {pre_stop}"
            ));
        }
        let mut child = self.child.take().ok_or("the pod is not running")?;
        // SAFETY: kill(2) with the id of a child this process has not reaped.
        unsafe {
            libc::kill(child.id().cast_signed(), libc::SIGTERM);
        }
        let mut killed = false;
        let status = loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                break status;
            }
            if started.elapsed() > self.grace && !killed {
                let _ = child.kill();
                killed = true;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Ok(Stopped {
            status,
            killed,
            took: started.elapsed(),
        })
    }

    fn end_probes(&mut self) {
        self.probing.stop.store(true, Ordering::Release);
        if let Some(prober) = self.prober.take() {
            let _ = prober.join();
        }
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        self.end_probes();
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.slices.remove();
        // The mount points this pod made, deepest first.
        for dir in self.created.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn text(value: &Value) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("expected a string, found {value}"))
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", path.display()))
}

/// This machine's first non-loopback IPv4 address: EndpointSlices refuse
/// loopback addresses, as a pod never has one.
fn host_ip() -> Result<String, String> {
    let mut addresses: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `addresses` with a list freed below.
    if unsafe { libc::getifaddrs(&raw mut addresses) } != 0 {
        return Err("getifaddrs failed".into());
    }
    let mut found = None;
    let mut cursor = addresses;
    while !cursor.is_null() {
        // SAFETY: `cursor` walks the list getifaddrs returned.
        let entry = unsafe { &*cursor };
        if !entry.ifa_addr.is_null()
            // SAFETY: ifa_addr points at a sockaddr of the family it names.
            && i32::from(unsafe { (*entry.ifa_addr).sa_family }) == libc::AF_INET
        {
            // SAFETY: an AF_INET address is a sockaddr_in.
            let address = unsafe { &*entry.ifa_addr.cast::<libc::sockaddr_in>() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(address.sin_addr.s_addr));
            if !ip.is_loopback() && !ip.is_link_local() {
                found = Some(ip.to_string());
                break;
            }
        }
        cursor = entry.ifa_next;
    }
    // SAFETY: the list getifaddrs returned, freed once.
    unsafe { libc::freeifaddrs(addresses) };
    found.ok_or_else(|| {
        "this machine has no non-loopback IPv4 address for the pod's endpoint".into()
    })
}

/// The image's `ENTRYPOINT` and `CMD`, from the repository's Dockerfile.
fn image_entrypoint() -> Result<(String, Vec<String>), String> {
    let dockerfile = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Dockerfile");
    let text = std::fs::read_to_string(&dockerfile).map_err(|e| e.to_string())?;
    let exec_form = |instruction: &str| -> Option<Vec<String>> {
        let line = text
            .lines()
            .rev()
            .find(|l| l.starts_with(&format!("{instruction} ")))?;
        serde_json::from_str(line[instruction.len()..].trim()).ok()
    };
    let entrypoint = exec_form("ENTRYPOINT")
        .and_then(|e| e.into_iter().next())
        .ok_or("the Dockerfile has no exec-form ENTRYPOINT")?;
    Ok((entrypoint, exec_form("CMD").unwrap_or_default()))
}

/// Where a volume goes in the container.
struct Mount {
    source: PathBuf,
    target: PathBuf,
    read_only: bool,
}

/// The user and filesystem rules of the container.
struct Security {
    user: u32,
    group: u32,
    fs_group: Option<u32>,
    read_only_root: bool,
    no_new_privileges: bool,
}

impl Security {
    fn of(pod: &Value, container: &Value) -> Result<Self, String> {
        let (pod, container) = (&pod["securityContext"], &container["securityContext"]);
        let id = |key: &str| -> Option<u32> {
            container[key]
                .as_u64()
                .or_else(|| pod[key].as_u64())
                .and_then(|v| u32::try_from(v).ok())
        };
        let user = id("runAsUser").unwrap_or(0);
        let non_root = container["runAsNonRoot"]
            .as_bool()
            .or_else(|| pod["runAsNonRoot"].as_bool())
            .unwrap_or(false);
        if non_root && user == 0 {
            return Err("runAsNonRoot is set and the container would run as root".into());
        }
        let drops_all = container["capabilities"]["drop"]
            .as_array()
            .is_some_and(|d| d.iter().any(|c| c == "ALL"));
        if !drops_all {
            return Err("the e2e kubelet runs containers that drop ALL capabilities".into());
        }
        Ok(Self {
            user,
            group: id("runAsGroup").unwrap_or(user),
            fs_group: pod["fsGroup"].as_u64().and_then(|v| u32::try_from(v).ok()),
            read_only_root: container["readOnlyRootFilesystem"] == true,
            no_new_privileges: container["allowPrivilegeEscalation"] == false,
        })
    }
}

/// Writes a volume's contents into `dir`.
fn write_volume(
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

fn get_json(cluster: &Cluster, namespace: &str, kind: &str, name: &str) -> Result<Value, String> {
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
fn write_service_account(
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
fn make_mount_point(target: &Path, created: &mut Vec<PathBuf>) -> Result<(), String> {
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

/// The container's environment, as the kubelet builds it.
fn environment(
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
fn expand(text: &str, env: &[(String, String)]) -> String {
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

/// The container port `port` names (by name or number).
fn named_port(container: &Value, port: &Value) -> Option<u16> {
    if let Some(number) = port.as_u64() {
        return u16::try_from(number).ok();
    }
    container["ports"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == *port)
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
}

/// What the child does between fork and exec: its own mount namespace with
/// the volumes in place, the root read-only, then the container's user.
struct Isolation {
    mounts: Vec<(CString, CString, bool)>,
    read_only_root: bool,
    user: u32,
    group: u32,
    groups: Vec<libc::gid_t>,
    no_new_privileges: bool,
    root: CString,
}

impl Isolation {
    fn new(mounts: &[Mount], security: &Security) -> Result<Self, String> {
        let c =
            |p: &Path| CString::new(p.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string());
        Ok(Self {
            mounts: mounts
                .iter()
                .map(|m| Ok((c(&m.source)?, c(&m.target)?, m.read_only)))
                .collect::<Result<_, String>>()?,
            read_only_root: security.read_only_root,
            user: security.user,
            group: security.group,
            groups: security.fs_group.into_iter().collect(),
            no_new_privileges: security.no_new_privileges,
            root: CString::new("/").expect("no NUL"),
        })
    }

    /// Runs in the forked child: system calls only.
    fn enter(&self) -> std::io::Result<()> {
        let check = |result: libc::c_int| {
            if result == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        };
        let none = std::ptr::null();
        // SAFETY: each call gets NUL-terminated strings prepared before the
        // fork, or null where the call allows it.
        unsafe {
            check(libc::unshare(libc::CLONE_NEWNS))?;
            check(libc::mount(
                none,
                self.root.as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            for (source, target, read_only) in &self.mounts {
                check(libc::mount(
                    source.as_ptr(),
                    target.as_ptr(),
                    none,
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ))?;
                if *read_only {
                    check(libc::mount(
                        none,
                        target.as_ptr(),
                        none,
                        libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
                        std::ptr::null(),
                    ))?;
                }
            }
            if self.read_only_root {
                check(libc::mount(
                    none,
                    self.root.as_ptr(),
                    none,
                    libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY,
                    std::ptr::null(),
                ))?;
            }
            // capabilities: drop ALL, from the bounding set too.
            for capability in 0..=libc::c_ulong::from(63u8) {
                libc::prctl(libc::PR_CAPBSET_DROP, capability, 0, 0, 0);
            }
            check(libc::setgroups(self.groups.len(), self.groups.as_ptr()))?;
            check(libc::setgid(self.group))?;
            check(libc::setuid(self.user))?;
            if self.no_new_privileges {
                check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
            }
        }
        Ok(())
    }
}

/// The EndpointSlices of the Services that select the pod, kept as the
/// EndpointSlice controller keeps them: one endpoint, this pod.
struct Slices {
    kubectl: PathBuf,
    kubeconfig: PathBuf,
    slices: Vec<Value>,
    published: Mutex<Option<(bool, bool)>>,
}

impl Slices {
    fn of(
        cluster: &Cluster,
        namespace: &str,
        template: &Value,
        container: &Value,
        pod: &str,
        ip: &str,
    ) -> Result<Self, String> {
        let output = cluster.kubectl(&["-n", namespace, "get", "services", "-o", "json"], None);
        let services: Value = serde_json::from_slice(&output.stdout)
            .map_err(|e| format!("kubectl get services: {e}"))?;
        let labels = &template["metadata"]["labels"];
        let mut slices = Vec::new();
        for service in services["items"].as_array().into_iter().flatten() {
            let Some(selector) = service["spec"]["selector"].as_object() else {
                continue;
            };
            if selector.is_empty() || selector.iter().any(|(k, v)| labels[k] != *v) {
                continue;
            }
            let service_name = text(&service["metadata"]["name"])?;
            let ports: Vec<Value> = service["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    let target = if p["targetPort"].is_null() {
                        &p["port"]
                    } else {
                        &p["targetPort"]
                    };
                    Some(json!({
                        "name": p["name"].as_str().unwrap_or(""),
                        "port": named_port(container, target)?,
                        "protocol": p["protocol"].as_str().unwrap_or("TCP"),
                    }))
                })
                .collect();
            slices.push(json!({
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": format!("{service_name}-e2e-kubelet"),
                    "namespace": namespace,
                    "labels": {
                        "kubernetes.io/service-name": service_name,
                        "endpointslice.kubernetes.io/managed-by": "e2e-kubelet.bouncer.dev",
                    },
                },
                "addressType": "IPv4",
                "ports": ports,
                "endpoints": [{
                    "addresses": [ip],
                    "targetRef": {"kind": "Pod", "namespace": namespace, "name": pod},
                }],
            }));
        }
        if slices.is_empty() {
            return Err("no Service selects the pod's labels".into());
        }
        Ok(Self {
            kubectl: cluster.kubectl_path(),
            kubeconfig: cluster.kubeconfig.clone(),
            slices,
            published: Mutex::new(None),
        })
    }

    /// Runs kubectl, from the prober's thread too.
    fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
        let output = super::cluster::run_with(&self.kubectl, &self.kubeconfig, args, stdin);
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// Writes every slice with the endpoint `ready` (and `terminating`).
    fn publish(&self, ready: bool, terminating: bool) -> Result<(), String> {
        let mut published = self.published.lock().expect("slices");
        if *published == Some((ready, terminating)) {
            return Ok(());
        }
        for slice in &self.slices {
            let mut slice = slice.clone();
            slice["endpoints"][0]["conditions"] = json!({
                "ready": ready,
                "serving": ready || terminating,
                "terminating": terminating,
            });
            self.kubectl(&["apply", "-f", "-"], Some(&slice.to_string()))?;
        }
        *published = Some((ready, terminating));
        Ok(())
    }

    fn remove(&self) {
        for slice in &self.slices {
            let (namespace, name) = (
                slice["metadata"]["namespace"].as_str().unwrap_or(""),
                slice["metadata"]["name"].as_str().unwrap_or(""),
            );
            let _ = self.kubectl(
                &[
                    "-n",
                    namespace,
                    "delete",
                    "endpointslice",
                    name,
                    "--ignore-not-found",
                ],
                None,
            );
        }
    }
}

/// One probe of the container spec: where, how often, how many failures.
struct Probe {
    url: String,
    period: Duration,
    timeout: Duration,
    failure_threshold: u32,
    failures: u32,
    next: Instant,
}

impl Probe {
    fn of(container: &Value, key: &str, ip: &str) -> Option<Self> {
        let probe = &container[key];
        let get = &probe["httpGet"];
        let port = named_port(container, &get["port"])?;
        let scheme = get["scheme"]
            .as_str()
            .unwrap_or("HTTP")
            .to_ascii_lowercase();
        let seconds =
            |k: &str, default: u64| Duration::from_secs(probe[k].as_u64().unwrap_or(default));
        Some(Self {
            url: format!(
                "{scheme}://{ip}:{port}{}",
                get["path"].as_str().unwrap_or("/")
            ),
            period: seconds("periodSeconds", 10),
            timeout: seconds("timeoutSeconds", 1),
            failure_threshold: u32::try_from(probe["failureThreshold"].as_u64().unwrap_or(3))
                .unwrap_or(3),
            failures: 0,
            next: Instant::now() + seconds("initialDelaySeconds", 0),
        })
    }

    /// Probes when due: `Some(result)` when it probed.
    fn due(&mut self, client: &reqwest::blocking::Client) -> Option<bool> {
        if Instant::now() < self.next {
            return None;
        }
        self.next = Instant::now() + self.period;
        let ok = client
            .get(&self.url)
            .timeout(self.timeout)
            .send()
            .is_ok_and(|r| (200..400).contains(&r.status().as_u16()));
        self.failures = if ok { 0 } else { self.failures + 1 };
        Some(ok)
    }
}

/// The kubelet's prober: startup first, then readiness and liveness.
fn probe(container: &Value, ip: &str, probing: &Probing, slices: &Slices) {
    bouncer::crypto::install_default_provider();
    let Ok(client) = reqwest::blocking::Client::builder().build() else {
        return;
    };
    let mut startup = Probe::of(container, "startupProbe", ip);
    let mut readiness = Probe::of(container, "readinessProbe", ip);
    let mut liveness = Probe::of(container, "livenessProbe", ip);
    while !probing.stop.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(100));
        if !probing.started.load(Ordering::Acquire) {
            match startup.as_mut().map(|p| p.due(&client)) {
                Some(Some(true)) | None => probing.started.store(true, Ordering::Release),
                _ => {}
            }
            continue;
        }
        if let Some(Some(ok)) = readiness.as_mut().map(|p| p.due(&client)) {
            let was = probing.ready.load(Ordering::Acquire);
            let threshold = readiness.as_ref().map_or(1, |p| p.failure_threshold);
            let ready = ok || (was && readiness.as_ref().is_some_and(|p| p.failures < threshold));
            if was && !ready {
                probing.unready_spells.fetch_add(1, Ordering::AcqRel);
            }
            if slices.publish(ready, false).is_ok() {
                probing.ready.store(ready, Ordering::Release);
            }
        }
        if let Some(probe) = liveness.as_mut()
            && probe.due(&client) == Some(false)
            && probe.failures >= probe.failure_threshold
        {
            probing.liveness_failures.fetch_add(1, Ordering::AcqRel);
            probe.failures = 0;
        }
    }
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
