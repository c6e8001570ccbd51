//! A real OCI registry on loopback for the tests: Debian's `docker-registry`
//! (the reference `distribution` registry), started per test with its own
//! storage, optionally with TLS (a generated CA) and basic auth.
//!
//! Self-contained, so the end-to-end test (`tests/tests/e2e`) includes this
//! same file with `#[path]`: both crates sit one level below the workspace.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The user and password of a registry started with auth.
pub(crate) const USER: &str = "ci";
pub(crate) const PASSWORD: &str = "s3cret";
/// bcrypt of [`PASSWORD`] (the only hash `htpasswd` auth accepts).
const HTPASSWD: &str = "ci:$2y$05$ISnix0f1HXxZNjf2s.KI3.nP5QyXHwO4lmdwGw4iHgt6o8RmlP7d2\n";

/// A running registry; stopped when dropped.
pub(crate) struct Registry {
    child: Option<Child>,
    pub port: u16,
    /// Its working directory (storage under `storage/`).
    pub dir: tempfile::TempDir,
    /// The CA to trust, when it serves TLS.
    pub ca: Option<PathBuf>,
    /// A Docker config.json with the right credentials, when it has auth.
    pub auth: Option<PathBuf>,
    config: PathBuf,
}

/// What `tests/registry/tools.sh` installed: the cosign binary (and
/// `docker-registry` on the PATH). The script runs once per test process, so
/// `cargo test` alone sets up a fresh machine; `None` when it could not (a
/// machine without apt or Go), which fails the run under `CI=true`.
pub(crate) fn tools() -> Option<&'static Path> {
    static TOOLS: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    TOOLS
        .get_or_init(|| {
            if let Some(cosign) = std::env::var_os("BOUNCER_COSIGN") {
                return Some(PathBuf::from(cosign));
            }
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/registry/tools.sh");
            let output = Command::new("bash")
                .arg(&script)
                .stderr(Stdio::inherit())
                .output();
            match output {
                Ok(output) if output.status.success() => {
                    let text = String::from_utf8_lossy(&output.stdout);
                    text.lines().last().map(|line| PathBuf::from(line.trim()))
                }
                other => {
                    let why = format!("{} failed: {other:?}", script.display());
                    assert!(std::env::var_os("CI").is_none(), "{why}");
                    eprintln!("skipped: {why}");
                    None
                }
            }
        })
        .as_deref()
}

/// The registry binary, once [`tools`] installed it.
pub(crate) fn binary() -> Option<PathBuf> {
    tools()?;
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("docker-registry"))
            .find(|p| p.is_file())
    })
}

impl Registry {
    /// Starts a registry; `None` (with a note) when the binary is missing outside CI.
    pub(crate) fn start(tls: bool, auth: bool) -> Option<Self> {
        if binary().is_none() {
            eprintln!(
                "skipped: docker-registry is not installed (apt-get install docker-registry)"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .expect("a free loopback port");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("storage").display()
        );
        let mut ca = None;
        if tls {
            let generated = bouncer::crypto::SelfSigned::generate().unwrap();
            let (cert, key, ca_path) = (
                dir.path().join("cert.pem"),
                dir.path().join("key.pem"),
                dir.path().join("ca.pem"),
            );
            std::fs::write(&cert, format!("{}{}", generated.leaf_pem, generated.ca_pem)).unwrap();
            std::fs::write(&key, &generated.key_pem).unwrap();
            std::fs::write(&ca_path, &generated.ca_pem).unwrap();
            config.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
            ca = Some(ca_path);
        }
        let mut auth_file = None;
        if auth {
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, HTPASSWD).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: bouncer-tests\n    path: {}\n",
                htpasswd.display()
            ));
            auth_file = Some(docker_config(dir.path(), port, USER, PASSWORD));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let mut registry = Self {
            child: None,
            port,
            dir,
            ca,
            auth: auth_file,
            config: config_path,
        };
        registry.resume();
        Some(registry)
    }

    /// `127.0.0.1:<port>`.
    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops it (the storage stays): the registry is down.
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and storage, and waits until it listens.
    pub(crate) fn resume(&mut self) {
        let binary = binary().expect("checked at start");
        let child = Command::new(binary)
            .arg("serve")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the registry did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The stored blob with `digest` (`sha256:…`), to tamper with.
    pub(crate) fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Docker config.json in `dir` with `user`/`password` for the registry on `port`.
pub(crate) fn docker_config(dir: &Path, port: u16, user: &str, password: &str) -> PathBuf {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let path = dir.join(format!("docker-config-{user}-{password}.json"));
    std::fs::write(
        &path,
        format!(r#"{{"auths": {{"127.0.0.1:{port}": {{"auth": "{auth}"}}}}}}"#),
    )
    .unwrap();
    path
}
