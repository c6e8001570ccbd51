//! A registry that misbehaves must cost bouncer bounded memory and time, and
//! never its other policies, its probes, its reloads or its shutdown. The
//! registry here is a small HTTP server on loopback that answers as a broken
//! or hostile one would: bodies without end, lying lengths, a token realm
//! that never stops, a drip of one byte a second, silence.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::run_bounded;

use crate::support::serve::{
    free_port, get_raw, ingress_review_without_target_type, post_raw, serve_command,
    wait_until_serving,
};

/// How the fake registry answers.
#[derive(Debug, Clone, Copy)]
enum Misbehaviour {
    /// The manifest's body never ends (chunked, no length).
    EndlessManifest,
    /// The manifest claims 10 GB and sends without end.
    HugeLength,
    /// A 404 whose error body never ends.
    EndlessNotFound,
    /// A bearer challenge whose token realm answers without end.
    EndlessToken,
    /// Headers, then one byte a second.
    Drip,
    /// Accepts the connection, reads the request, never answers.
    Silent,
}

/// Starts the fake registry; returns its `host:port`. Its threads end with the test process.
fn misbehaving_registry(how: Misbehaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let realm = format!("http://{host}/token");
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let realm = realm.clone();
            std::thread::spawn(move || answer(stream, how, &realm));
        }
    });
    host
}

fn answer(mut stream: TcpStream, how: Misbehaviour, realm: &str) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let request = String::from_utf8_lossy(&head).to_string();
    let endless = |stream: &mut TcpStream, status: &str| {
        let header = format!(
            "HTTP/1.1 {status}\r\nconnection: close\r\ncontent-type: application/vnd.oci.image.manifest.v1+json\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        if stream.write_all(header.as_bytes()).is_err() {
            return;
        }
        let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, " ".repeat(64 * 1024));
        while stream.write_all(chunk.as_bytes()).is_ok() {}
    };
    match how {
        Misbehaviour::EndlessManifest => endless(&mut stream, "200 OK"),
        Misbehaviour::EndlessNotFound => endless(&mut stream, "404 Not Found"),
        Misbehaviour::HugeLength => {
            let header = "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: application/vnd.oci.image.manifest.v1+json\r\ncontent-length: 10000000000\r\n\r\n";
            if stream.write_all(header.as_bytes()).is_ok() {
                let block = vec![b' '; 64 * 1024];
                while stream.write_all(&block).is_ok() {}
            }
        }
        Misbehaviour::EndlessToken if request.starts_with("GET /token") => {
            endless(&mut stream, "200 OK");
        }
        Misbehaviour::EndlessToken => {
            let answer = format!(
                "HTTP/1.1 401 Unauthorized\r\nconnection: close\r\nwww-authenticate: Bearer realm=\"{realm}\",service=\"fake\"\r\ncontent-length: 0\r\n\r\n"
            );
            let _ = stream.write_all(answer.as_bytes());
        }
        Misbehaviour::Drip => {
            let header = "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: application/vnd.oci.image.manifest.v1+json\r\ncontent-length: 100000\r\n\r\n";
            if stream.write_all(header.as_bytes()).is_ok() {
                while stream.write_all(b" ").is_ok() {
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
        Misbehaviour::Silent => std::thread::sleep(Duration::from_secs(600)),
    }
}

/// A configuration with a built-in policy and `custom` from `registry`.
fn config(dir: &Path, registry: &str, timeout: &str) -> PathBuf {
    let path = dir.join("policies.yaml");
    std::fs::write(
        &path,
        format!(
            "registry:\n  store: {}\n  plainHttp: [\"{registry}\"]\n  timeout: {timeout}\n\
             policies:\n  - name: custom\n    source: oci://{registry}/policies/custom:1.0\n\
             \x20 - name: alb-target-type-ip\n    source: builtin:alb-target-type-ip\n",
            dir.join("store").display()
        ),
    )
    .unwrap();
    path
}

fn config_check(config: &Path) -> Command {
    let mut command = crate::support::bouncer_command();
    command.args(["config", "check"]).arg(config);
    command
}

/// Peak RSS that leaves no doubt nothing endless was held: a load with two
/// policies stays far below it; an endless body at loopback speed passes it
/// within a second.
const MEMORY_BOUND_MIB: u64 = 300;

#[test]
fn endless_and_oversized_answers_are_refused_with_bounded_memory() {
    for (how, says) in [
        (
            Misbehaviour::EndlessManifest,
            "manifest is longer than the 4194304 bytes",
        ),
        (
            Misbehaviour::HugeLength,
            "manifest is longer than the 4194304 bytes",
        ),
        (Misbehaviour::EndlessNotFound, "no such tag or digest"),
        (
            Misbehaviour::EndlessToken,
            "token answer is longer than the 1048576 bytes",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let registry = misbehaving_registry(how);
        let config = config(dir.path(), &registry, "60s");
        let finished = run_bounded(config_check(&config), Duration::from_secs(60));
        assert_eq!(finished.code, Some(2), "{how:?}: {}", finished.stderr);
        assert!(
            finished.stderr.contains("policy `custom`") && finished.stderr.contains(says),
            "{how:?}: {}",
            finished.stderr
        );
        assert!(
            finished.peak_rss_mib < MEMORY_BOUND_MIB,
            "{how:?}: peak RSS {} MiB",
            finished.peak_rss_mib
        );
        // The registry's words reach the user cut, on one line.
        let longest = finished.stderr.lines().map(str::len).max().unwrap_or(0);
        assert!(longest < 4096, "{how:?}: a line of {longest} bytes");
    }
}

#[test]
fn a_dripping_or_silent_registry_is_given_up_at_the_pull_deadline() {
    for how in [Misbehaviour::Drip, Misbehaviour::Silent] {
        let dir = tempfile::tempdir().unwrap();
        let registry = misbehaving_registry(how);
        let config = config(dir.path(), &registry, "3s");
        // Well past the deadline, well before any per-read timeout would
        // end a drip (it never would).
        let finished = run_bounded(config_check(&config), Duration::from_secs(60));
        assert_eq!(finished.code, Some(2), "{how:?}: {}", finished.stderr);
        assert!(
            finished
                .stderr
                .contains("the registry did not answer within 3s (`registry.timeout`)"),
            "{how:?}: {}",
            finished.stderr
        );
    }
}

/// `bouncer serve` with `config`, its health port and a short shutdown delay.
fn serve(
    dir: &Path,
    config: &Path,
) -> (Child, u16, u16, PathBuf, std::sync::mpsc::Receiver<String>) {
    let (ca, port, health) = (dir.join("ca.pem"), free_port(), free_port());
    let mut child = serve_command(port, &ca)
        .args([
            "--watch-interval",
            "1h",
            "--shutdown-delay",
            "1s",
            "--config",
        ])
        .arg(config)
        .arg("--health-addr")
        .arg(format!("127.0.0.1:{health}"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = wait_until_serving(&mut child);
    (child, port, health, ca, log)
}

/// A plain GET on the health port: (status, body).
fn health_get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Waits up to `bound` for `child` to exit; whether it did.
fn exits_within(child: &mut Child, bound: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < bound {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

#[test]
fn a_silent_registry_keeps_neither_the_probes_nor_the_other_policies_nor_sigterm_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let registry = misbehaving_registry(Misbehaviour::Silent);
    let config = config(dir.path(), &registry, "10m");
    let (mut child, port, health, ca, _log) = serve(dir.path(), &config);

    // It listens at once: alive, not ready, and saying why.
    let (status, _) = health_get(health, "/healthz");
    assert_eq!(status, 200);
    let (status, body) = health_get(health, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("being pulled") && body.contains("policy `custom`"),
        "{body}"
    );
    // The built-in answers; the pending policy answers by its failure mode
    // (closed: denied, saying it is not pulled yet).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let answer = runtime.block_on(post_raw(
        port,
        &ca,
        "/validate",
        &ingress_review_without_target_type(),
    ));
    assert!(answer.contains(r#""allowed":false"#), "{answer}");
    assert!(answer.contains("target-type"), "{answer}");
    assert!(answer.contains("not pulled yet"), "{answer}");

    // SIGHUPs during the stuck pull are taken, not lost, and do not block.
    signal(&child, "HUP");
    signal(&child, "HUP");
    let ready = runtime.block_on(get_raw(port, &ca, "/healthz"));
    assert!(ready.contains("200 OK"), "{ready}");

    // SIGTERM acts within the shutdown delay and drain, pull or no pull.
    signal(&child, "TERM");
    assert!(
        exits_within(&mut child, Duration::from_secs(30)),
        "bouncer serve was still running 30 s after SIGTERM"
    );
}

#[test]
fn a_pull_that_passes_its_deadline_unloads_the_policy_and_reloads_carry_on() {
    let dir = tempfile::tempdir().unwrap();
    let registry = misbehaving_registry(Misbehaviour::Drip);
    let config = config(dir.path(), &registry, "2s");
    let (mut child, _port, health, _ca, _log) = serve(dir.path(), &config);

    // After the deadline the background pull gives up: ready, with the
    // policy unloaded and the reason.
    let reason = wait_for(health, |status, body| {
        status == 200 && body.contains("is not loaded")
    });
    assert!(reason.contains("did not answer within 2s"), "{reason}");

    // A reload that is stuck on the drip ends at the deadline too, and the
    // SIGHUP sent meanwhile is carried out afterwards: the edit that removes
    // the registry policy is what ends up serving.
    signal(&child, "HUP");
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(
        &config,
        "policies:\n  - name: alb-target-type-ip\n    source: builtin:alb-target-type-ip\n",
    )
    .unwrap();
    signal(&child, "HUP");
    let settled = wait_for(health, |status, body| {
        status == 200 && body.contains("1 policies loaded") && !body.contains("custom")
    });
    assert!(!settled.contains("reload"), "{settled}");
    signal(&child, "TERM");
    assert!(exits_within(&mut child, Duration::from_secs(30)));
}

/// Polls `/readyz` on the health port until `done` holds (at most a minute).
fn wait_for(health: u16, done: impl Fn(u16, &str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let (status, body) = health_get(health, "/readyz");
        if done(status, &body) {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "/readyz never got there: {status} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Registry entries are pulled together: four silent registries cost one
/// pull deadline, not four (three unreachable tags used to keep a replica
/// from listening for three minutes).
#[test]
fn silent_registries_are_asked_at_once_not_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    let hosts: Vec<String> = (0..4)
        .map(|_| misbehaving_registry(Misbehaviour::Silent))
        .collect();
    let entries: String = hosts
        .iter()
        .enumerate()
        .map(|(i, host)| {
            format!("  - name: custom-{i}\n    source: oci://{host}/policies/custom:1.0\n")
        })
        .collect();
    let plain: Vec<String> = hosts.iter().map(|h| format!("\"{h}\"")).collect();
    let config = dir.path().join("policies.yaml");
    std::fs::write(
        &config,
        format!(
            "registry:\n  store: {}\n  plainHttp: [{}]\n  timeout: 4s\npolicies:\n{entries}",
            dir.path().join("store").display(),
            plain.join(", ")
        ),
    )
    .unwrap();
    // In turn they would take 16 s; together, one deadline and the loading.
    let finished = run_bounded(config_check(&config), Duration::from_secs(12));
    assert_eq!(finished.code, Some(2), "{}", finished.stderr);
    assert!(
        finished
            .stderr
            .contains("4 of the configured policies cannot be loaded"),
        "{}",
        finished.stderr
    );
}
