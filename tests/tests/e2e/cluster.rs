//! A real control plane on loopback: etcd and kube-apiserver as child
//! processes, a fresh PKI, and a kubeconfig with an admin client certificate.
//! No kubelet or controllers: objects are stored, and pods run only where a
//! scenario runs one itself (`kubelet.rs`). kube-apiserver traces every
//! request to Jaeger (`jaeger.rs`) and sends W3C trace context to webhooks;
//! it reaches a webhook Service through its EndpointSlices
//! (`--enable-aggregator-routing`), as there is no kube-proxy.

use crate::say;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bouncer_tests::free_port;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use super::tools::Tools;

/// A running etcd + kube-apiserver; both are killed on drop.
pub struct Cluster {
    /// Scratch directory: PKI, etcd data, logs, kubeconfig.
    pub dir: tempfile::TempDir,
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
    kubectl: PathBuf,
    helm: PathBuf,
    apiserver: (PathBuf, Vec<String>),
    children: std::sync::Mutex<Vec<Child>>,
    /// The trace backend kube-apiserver exports to.
    pub jaeger: super::jaeger::Jaeger,
    /// The API server's port on 127.0.0.1.
    pub api_port: u16,
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

impl Cluster {
    /// Starts etcd and kube-apiserver and waits for `/readyz`.
    pub fn start(tools: &Tools) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::generate(dir.path());
        let (etcd_port, peer_port, api_port) = (free_port(), free_port(), free_port());
        let log = |name: &str| std::fs::File::create(dir.path().join(name)).expect("log file");

        let etcd = Command::new(tools.path("etcd"))
            .args([
                "--name=e2e",
                &format!("--data-dir={}", dir.path().join("etcd").display()),
                &format!("--listen-client-urls=http://127.0.0.1:{etcd_port}"),
                &format!("--advertise-client-urls=http://127.0.0.1:{etcd_port}"),
                &format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
                &format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
                &format!("--initial-cluster=e2e=http://127.0.0.1:{peer_port}"),
                "--log-level=warn",
            ])
            .stdout(Stdio::null())
            .stderr(log("etcd.log"))
            .spawn()
            .expect("etcd starts");
        let file = |name: &str| dir.path().join(name).display().to_string();
        let jaeger = super::jaeger::Jaeger::start(&tools.path("jaeger"), dir.path());
        std::fs::write(
            dir.path().join("tracing.yaml"),
            format!(
                "apiVersion: apiserver.config.k8s.io/v1
kind: TracingConfiguration
endpoint: 127.0.0.1:{}
samplingRatePerMillion: 1000000
",
                jaeger.otlp_grpc
            ),
        )
        .expect("tracing config");
        let args: Vec<String> = vec![
            format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={api_port}"),
            format!("--cert-dir={}", file("apiserver-certs")),
            format!("--tls-cert-file={}", file("apiserver.pem")),
            format!("--tls-private-key-file={}", file("apiserver-key.pem")),
            format!("--client-ca-file={}", file("ca.pem")),
            format!("--service-account-key-file={}", file("sa-pub.pem")),
            format!("--service-account-signing-key-file={}", file("sa-key.pem")),
            "--service-account-issuer=https://kubernetes.default.svc".into(),
            "--service-cluster-ip-range=10.96.0.0/16".into(),
            "--authorization-mode=RBAC".into(),
            "--endpoint-reconciler-type=none".into(),
            "--enable-priority-and-fairness=false".into(),
            format!("--tracing-config-file={}", file("tracing.yaml")),
            "--enable-aggregator-routing=true".into(),
        ];
        let apiserver_bin = tools.path("kube-apiserver");
        let apiserver = spawn_apiserver(&apiserver_bin, &args, dir.path());

        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, pki.kubeconfig(api_port)).expect("kubeconfig");
        let cluster = Self {
            dir,
            kubeconfig,
            kubectl: tools.path("kubectl"),
            helm: tools.path("helm"),
            apiserver: (apiserver_bin, args),
            children: std::sync::Mutex::new(vec![etcd, apiserver]),
            jaeger,
            api_port,
        };
        cluster.wait_ready();
        cluster
    }

    /// Stops kube-apiserver and starts it again on the same port and etcd, as
    /// an API server upgrade or crash would; returns once it is ready again.
    pub fn restart_apiserver(&self) {
        {
            let mut children = self.children.lock().expect("children");
            let _ = children[1].kill();
            let _ = children[1].wait();
            children[1] = spawn_apiserver(&self.apiserver.0, &self.apiserver.1, self.dir.path());
        }
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            let exited = {
                let mut children = self.children.lock().expect("children");
                children
                    .iter_mut()
                    .zip(["etcd", "kube-apiserver"])
                    .find_map(|(child, name)| match child.try_wait() {
                        Ok(Some(status)) => Some((name, status)),
                        _ => None,
                    })
            };
            if let Some((name, status)) = exited {
                panic!("{name} exited ({status}); its log:\n{}", self.log_of(name));
            }
            let out = self.kubectl(&["get", "--raw=/readyz"], None);
            if out.status.success() {
                say!("kube-apiserver ready in {:.1?}", started.elapsed());
                return;
            }
            if started.elapsed() > Duration::from_secs(90) {
                panic!(
                    "kube-apiserver not ready after 90 s; its log:\n{}",
                    self.log("kube-apiserver.log")
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn log_of(&self, component: &str) -> String {
        self.log(&format!("{component}.log"))
    }

    /// The tail of a component's log.
    pub fn log(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Runs kubectl against the cluster.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        run_with(&self.kubectl, &self.kubeconfig, args, stdin)
    }

    /// The kubectl binary, for threads that outlive a borrow of the cluster.
    pub fn kubectl_path(&self) -> PathBuf {
        self.kubectl.clone()
    }

    /// The PEM CA bundle the API server's certificate is signed by.
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ca.pem")).expect("ca.pem")
    }

    /// Runs helm against the cluster.
    pub fn helm(&self, args: &[&str]) -> Output {
        run_with(&self.helm, &self.kubeconfig, args, None)
    }
}

/// Runs `bin` (kubectl or helm) with `kubeconfig`, feeding it `stdin`.
pub fn run_with(bin: &Path, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(bin)
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HELM_CACHE_HOME", kubeconfig.with_file_name("helm-cache"))
        .env("HELM_CONFIG_HOME", kubeconfig.with_file_name("helm-config"))
        .env("HELM_DATA_HOME", kubeconfig.with_file_name("helm-data"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("wait")
}

fn spawn_apiserver(bin: &Path, args: &[String], dir: &Path) -> Child {
    // Appends, so a restart keeps the first run's log too.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("kube-apiserver.log"))
        .expect("log file");
    Command::new(bin)
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("kube-apiserver starts")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let children = self
            .children
            .get_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        for mut child in children.into_iter().rev() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The control plane's certificates, written as PEM files into the scratch dir.
struct Pki {
    ca_pem: String,
    admin_pem: String,
    admin_key_pem: String,
}

impl Pki {
    fn generate(dir: &Path) -> Self {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "bouncer-e2e-ca");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca =
            CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");

        let names = [
            "127.0.0.1",
            "localhost",
            "10.96.0.1",
            "kubernetes.default.svc",
        ];
        let mut serving = CertificateParams::new(names.map(String::from).to_vec()).expect("params");
        serving
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_key = KeyPair::generate().expect("key");
        let serving = serving.signed_by(&serving_key, &ca).expect("serving cert");

        let mut admin = CertificateParams::new(Vec::<String>::new()).expect("params");
        admin
            .distinguished_name
            .push(DnType::CommonName, "e2e-admin");
        admin
            .distinguished_name
            .push(DnType::OrganizationName, "system:masters");
        admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let admin_key = KeyPair::generate().expect("key");
        let admin = admin.signed_by(&admin_key, &ca).expect("admin cert");

        let sa_key = KeyPair::generate().expect("key");
        let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).expect(name);
        write("ca.pem", &ca.pem());
        write("apiserver.pem", &serving.pem());
        write("apiserver-key.pem", &serving_key.serialize_pem());
        write("sa-key.pem", &sa_key.serialize_pem());
        write("sa-pub.pem", &sa_key.public_key_pem());
        Self {
            ca_pem: ca.pem(),
            admin_pem: admin.pem(),
            admin_key_pem: admin_key.serialize_pem(),
        }
    }

    fn kubeconfig(&self, port: u16) -> String {
        format!(
            "apiVersion: v1
kind: Config
clusters:
  - name: e2e
    cluster:
      server: https://127.0.0.1:{port}
      certificate-authority-data: {ca}
users:
  - name: admin
    user:
      client-certificate-data: {cert}
      client-key-data: {key}
contexts:
  - name: e2e
    context: {{cluster: e2e, user: admin}}
current-context: e2e
",
            ca = b64(&self.ca_pem),
            cert = b64(&self.admin_pem),
            key = b64(&self.admin_key_pem),
        )
    }
}
