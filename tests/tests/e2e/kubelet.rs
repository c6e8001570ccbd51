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
//!
//! Its parts: `volumes`, `env`, `isolation` (between fork and exec),
//! `probes`, `endpoints` (the EndpointSlices).

mod endpoints;
mod env;
mod isolation;
mod probes;
mod volumes;

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use self::endpoints::Slices;
use self::isolation::{Isolation, Security};
use self::volumes::{Mount, make_mount_point, write_service_account, write_volume};
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
        let env = env::environment(cluster, &namespace, &name, &ip, &container)?;
        let args: Vec<String> = match container["args"].as_array() {
            Some(args) => args
                .iter()
                .map(|a| a.as_str().map(|a| env::expand(a, &env)))
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
            std::thread::spawn(move || probes::probe(&container, &ip, &probing, &slices))
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

pub(super) fn text(value: &Value) -> Result<String, String> {
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

pub(super) fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
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

/// The container port `port` names (by name or number).
pub(super) fn named_port(container: &Value, port: &Value) -> Option<u16> {
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
