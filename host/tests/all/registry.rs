//! Shipping policies through a real OCI registry (Debian's `docker-registry`,
//! started per test): push, `oci://` sources by tag and by digest, reloads,
//! the last good component when the registry is down, and every way a pull
//! can be refused.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::registry::{self, Registry};
use crate::support::serve::{
    free_port, get_raw, ingress_review_without_target_type, post_raw, serve_command,
    wait_until_serving,
};
use crate::support::{bouncer, stderr, stdout};

const LEGACY_INGRESS: &str = "examples/manifests/violating/legacy-ingress.yaml";

/// `bouncer push` with the flags `registry` needs; panics with the output on failure.
fn push(registry: &Registry, policy: &str, tag: &str) -> String {
    let output = push_output(
        registry,
        policy,
        &format!("{}/policies/custom:{tag}", registry.host()),
    );
    assert!(output.status.success(), "push failed: {}", stderr(&output));
    stdout(&output).trim().to_owned()
}

fn push_output(registry: &Registry, policy: &str, reference: &str) -> Output {
    let mut args = vec!["push".to_owned(), policy.to_owned(), reference.to_owned()];
    args.extend(flags(registry));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    bouncer(&args, None)
}

fn flags(registry: &Registry) -> Vec<String> {
    let mut flags = Vec::new();
    match &registry.ca {
        Some(ca) => flags.extend(["--ca-bundle".to_owned(), ca.display().to_string()]),
        None => flags.push("--plain-http".to_owned()),
    }
    if let Some(auth) = &registry.auth {
        flags.extend(["--auth".to_owned(), auth.display().to_string()]);
    }
    flags
}

/// A config with one policy `custom` from `source`, reaching `registry`, storing in `store`.
fn config(dir: &Path, registry: &Registry, store: &Path, source: &str) -> PathBuf {
    config_verified(dir, registry, store, source, &[])
}

/// As [`config`], with `verify: {keys}` when `keys` are given.
fn config_verified(
    dir: &Path,
    registry: &Registry,
    store: &Path,
    source: &str,
    keys: &[&Path],
) -> PathBuf {
    let mut block = String::new();
    if !keys.is_empty() {
        let list: Vec<String> = keys
            .iter()
            .map(|k| format!("\"{}\"", k.display()))
            .collect();
        block.push_str(&format!("verify:\n  keys: [{}]\n", list.join(", ")));
    }
    block.push_str(&format!("registry:\n  store: {}\n", store.display()));
    match &registry.ca {
        Some(ca) => block.push_str(&format!("  caBundle: {}\n", ca.display())),
        None => block.push_str(&format!("  plainHttp: [\"{}\"]\n", registry.host())),
    }
    if let Some(auth) = &registry.auth {
        block.push_str(&format!("  auth: {}\n", auth.display()));
    }
    let path = dir.join("policies.yaml");
    std::fs::write(
        &path,
        format!("{block}policies:\n  - name: custom\n    source: {source}\n"),
    )
    .unwrap();
    path
}

fn check(config: &Path) -> Output {
    bouncer(
        &[
            "check",
            "-f",
            LEGACY_INGRESS,
            "-c",
            &config.display().to_string(),
        ],
        None,
    )
}

fn tagged(registry: &Registry, tag: &str) -> String {
    format!("oci://{}/policies/custom:{tag}", registry.host())
}

#[test]
fn a_pushed_policy_is_enforced_by_tag_and_by_digest() {
    let Some(registry) = Registry::start(false, false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pinned = push(&registry, "alb-target-type-ip", "1.0");
    assert!(
        pinned.starts_with(&format!(
            "oci://{}/policies/custom@sha256:",
            registry.host()
        )),
        "{pinned}"
    );

    let by_tag = config(
        dir.path(),
        &registry,
        &dir.path().join("store"),
        &tagged(&registry, "1.0"),
    );
    let denied = check(&by_tag);
    assert_eq!(
        denied.status.code(),
        Some(1),
        "{}{}",
        stdout(&denied),
        stderr(&denied)
    );
    assert!(stdout(&denied).contains("custom"), "{}", stdout(&denied));
    let checked = bouncer(&["config", "check", &by_tag.display().to_string()], None);
    assert!(checked.status.success(), "{}", stderr(&checked));
    assert!(
        stdout(&checked).contains(&format!("custom: {pinned}")),
        "{}",
        stdout(&checked)
    );

    // The manifest carries the metadata: inspect reads it without pulling.
    let mut args = vec![
        "inspect".to_owned(),
        tagged(&registry, "1.0"),
        "-o".into(),
        "json".into(),
    ];
    args.extend(flags(&registry));
    let inspected = bouncer(&args.iter().map(String::as_str).collect::<Vec<_>>(), None);
    let json = crate::support::stdout_json(&inspected);
    assert_eq!(json["pinned"], pinned.as_str());
    assert_eq!(
        json["annotations"]["org.opencontainers.image.title"],
        "alb-target-type-ip"
    );
    assert!(
        json["annotations"]["dev.bouncer.policy.kinds"]
            .as_str()
            .unwrap()
            .contains("Ingress")
    );

    // A digest in the store needs no registry.
    let by_digest = config(dir.path(), &registry, &dir.path().join("store"), &pinned);
    drop(registry);
    let offline = check(&by_digest);
    assert_eq!(offline.status.code(), Some(1), "{}", stderr(&offline));
}

#[test]
fn a_new_version_is_picked_up_on_reload_and_the_last_good_survives_an_outage() {
    let Some(mut registry) = Registry::start(false, false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let first = push(&registry, "alb-target-type-ip", "stable");
    let config = config(
        dir.path(),
        &registry,
        &dir.path().join("store"),
        &tagged(&registry, "stable"),
    );
    let (mut child, port, ca, log) = serve(dir.path(), &config);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let body = ingress_review_without_target_type();
    let denied = runtime.block_on(post_raw(port, &ca, "/validate", &body));
    assert!(denied.contains(r#""allowed":false"#), "{denied}");

    // Version 2 governs Pods only: the Ingress is allowed once it is loaded.
    let second = push(&registry, "require-irsa", "stable");
    assert_ne!(first, second);
    let hup = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let allowed = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        runtime
            .block_on(post_raw(port, &ca, "/validate", &body))
            .contains(r#""allowed":true"#)
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let logged: Vec<String> = log.try_iter().collect();
    assert!(
        allowed,
        "the reload did not pick up the new digest:\n{}",
        logged.join("\n")
    );
    let digest = second.rsplit_once('@').unwrap().1;
    assert!(
        logged.iter().any(|l| l.contains(digest)),
        "the resolved digest is not logged:\n{}",
        logged.join("\n")
    );

    // The registry goes down: the tag still loads what it last resolved to.
    registry.stop();
    let checked = bouncer(&["config", "check", &config.display().to_string()], None);
    assert!(checked.status.success(), "{}", stderr(&checked));
    let text = stdout(&checked);
    assert!(text.contains(&format!("custom: {second}")), "{text}");
    assert!(
        text.contains("the registry failed") && text.contains("serving the last good"),
        "{text}"
    );
}

#[test]
fn a_policy_never_pulled_fails_alone_when_the_registry_is_down() {
    let Some(mut registry) = Registry::start(false, false) else {
        return;
    };
    registry.stop();
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        &registry,
        &dir.path().join("store"),
        &tagged(&registry, "1.0"),
    );
    let (mut child, port, ca, _log) = serve(dir.path(), &config);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The pull runs after the port opens; a refused connection ends it at once.
    let mut ready = String::new();
    for _ in 0..100 {
        ready = runtime.block_on(get_raw(port, &ca, "/readyz"));
        if !ready.contains("being pulled") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let answer = runtime.block_on(post_raw(
        port,
        &ca,
        "/validate",
        &ingress_review_without_target_type(),
    ));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(
        ready.contains("custom") && ready.contains("cannot reach the registry"),
        "{ready}"
    );
    // Closed by default: the requests it would judge are denied, saying why.
    assert!(answer.contains(r#""allowed":false"#), "{answer}");
    assert!(answer.contains("custom"), "{answer}");
}

#[test]
fn tls_and_basic_auth_with_credentials_from_a_docker_config() {
    let Some(registry) = Registry::start(true, true) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pinned = push(&registry, "alb-target-type-ip", "1.0");
    let good = config(
        dir.path(),
        &registry,
        &dir.path().join("store"),
        &tagged(&registry, "1.0"),
    );
    assert_eq!(check(&good).status.code(), Some(1));

    // Wrong password: refused, naming the policy and saying what to do.
    let wrong = registry::docker_config(dir.path(), registry.port, registry::USER, "wrong");
    let text = std::fs::read_to_string(&good).unwrap().replace(
        &registry.auth.as_ref().unwrap().display().to_string(),
        &wrong.display().to_string(),
    );
    let bad = dir.path().join("bad-auth.yaml");
    std::fs::write(
        &bad,
        text.replace(
            &dir.path().join("store").display().to_string(),
            &dir.path().join("store2").display().to_string(),
        ),
    )
    .unwrap();
    let refused = check(&bad);
    assert_eq!(refused.status.code(), Some(2));
    let message = stderr(&refused);
    assert!(
        message.contains("policy `custom`") && message.contains("credentials"),
        "{message}"
    );

    // Without the CA the registry's certificate is not trusted.
    let output = bouncer(
        &[
            "inspect",
            &pinned,
            "--auth",
            &registry.auth.as_ref().unwrap().display().to_string(),
        ],
        None,
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("cannot reach the registry"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_tampered_layer_is_refused() {
    let Some(registry) = Registry::start(false, false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pinned = push(&registry, "alb-target-type-ip", "1.0");
    let inspected = {
        let mut args = vec![
            "inspect".to_owned(),
            pinned.clone(),
            "-o".into(),
            "json".into(),
        ];
        args.extend(flags(&registry));
        crate::support::stdout_json(&bouncer(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            None,
        ))
    };
    let layer = inspected["component"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = registry.blob_file(&layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let config = config(dir.path(), &registry, &dir.path().join("store"), &pinned);
    let refused = check(&config);
    assert_eq!(refused.status.code(), Some(2), "{}", stdout(&refused));
    let message = stderr(&refused);
    assert!(
        message.contains("policy `custom`") && message.contains("does not match its digest"),
        "{message}"
    );
}

#[test]
fn what_is_not_a_policy_is_refused_with_a_reason() {
    let Some(registry) = Registry::start(false, false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Not a component: push refuses before anything reaches the registry.
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm not really").unwrap();
    let refused = push_output(
        &registry,
        &junk.display().to_string(),
        &format!("{}/policies/junk:1", registry.host()),
    );
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("nothing pushed"),
        "{}",
        stderr(&refused)
    );

    // Nothing under the tag.
    let config_missing = config(
        dir.path(),
        &registry,
        &dir.path().join("store"),
        &tagged(&registry, "nope"),
    );
    let missing = check(&config_missing);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("policy `custom`"),
        "{}",
        stderr(&missing)
    );

    // Bad references are configuration errors, naming the entry.
    for (source, says) in [
        ("oci://custom:1.0", "name the registry host"),
        ("oci://127.0.0.1:1/p@sha256:abc", "is not sha256"),
    ] {
        let path = dir.path().join("bad.yaml");
        std::fs::write(
            &path,
            format!("policies:\n  - name: custom\n    source: {source}\n"),
        )
        .unwrap();
        let output = check(&path);
        assert_eq!(output.status.code(), Some(2));
        let message = stderr(&output);
        assert!(
            message.contains("policy `custom`") && message.contains(says),
            "{message}"
        );
    }
}

/// `bouncer serve` with `config` (reloaded only on SIGHUP), once it serves:
/// the child, its port, its CA and the rest of its log.
fn serve(
    dir: &Path,
    config: &Path,
) -> (
    std::process::Child,
    u16,
    PathBuf,
    std::sync::mpsc::Receiver<String>,
) {
    let (ca, port) = (dir.join("ca.pem"), free_port());
    let mut child = serve_command(port, &ca)
        .args(["--watch-interval", "1h", "--config"])
        .arg(config)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = wait_until_serving(&mut child);
    (child, port, ca, log)
}

#[test]
fn artifacts_that_are_not_policy_components_are_refused() {
    use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
    use oci_client::manifest::OciImageManifest;
    use oci_client::secrets::RegistryAuth;

    let Some(registry) = Registry::start(false, false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    bouncer::crypto::install_default_provider();
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    });
    let reference = |tag: &str| -> oci_client::Reference {
        format!("{}/policies/custom:{tag}", registry.host())
            .parse()
            .unwrap()
    };
    let wasm_config = || {
        Config::new(
            b"{}".to_vec(),
            bouncer::registry::CONFIG_MEDIA_TYPE.into(),
            None,
        )
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // A container image, not a Wasm artifact.
        let layer = ImageLayer::new(
            b"tar".to_vec(),
            "application/vnd.oci.image.layer.v1.tar".into(),
            None,
        );
        let config = Config::new(
            b"{}".to_vec(),
            "application/vnd.oci.image.config.v1+json".into(),
            None,
        );
        client
            .push(
                &reference("image"),
                &[layer],
                config,
                &RegistryAuth::Anonymous,
                None,
            )
            .await
            .unwrap();
        // Wasm, but a core module header, not a component.
        let layer = ImageLayer::new(b"\0asm\x01\0\0\0".to_vec(), "application/wasm".into(), None);
        client
            .push(
                &reference("module"),
                &[layer],
                wasm_config(),
                &RegistryAuth::Anonymous,
                None,
            )
            .await
            .unwrap();
        // A manifest that declares a layer far over the size bouncer pulls.
        let layer = ImageLayer::new(b"\0asm".to_vec(), "application/wasm".into(), None);
        let config = wasm_config();
        let mut manifest = OciImageManifest::build(std::slice::from_ref(&layer), &config, None);
        manifest.layers[0].size = 1 << 40;
        let pushed = client
            .push(
                &reference("huge"),
                &[layer],
                config,
                &RegistryAuth::Anonymous,
                Some(manifest),
            )
            .await;
        if let Err(error) = pushed {
            panic!("the registry refused the oversized manifest: {error}");
        }
    });
    for (tag, says) in [
        (
            "image",
            "media type `application/vnd.oci.image.layer.v1.tar`",
        ),
        ("module", "policy `custom`"),
        ("huge", "over the 134217728-byte limit"),
    ] {
        let path = config(
            dir.path(),
            &registry,
            &dir.path().join("store"),
            &tagged(&registry, tag),
        );
        let output = check(&path);
        assert_eq!(output.status.code(), Some(2), "{tag}: {}", stdout(&output));
        let message = stderr(&output);
        assert!(
            message.contains("policy `custom`") && message.contains(says),
            "{tag}: {message}"
        );
    }
}

/// The verification test's config: `source` checked against `keys`.
fn with_keys_config(
    registry: &Registry,
    dir: &tempfile::TempDir,
    source: &str,
    keys: &[&Path],
) -> PathBuf {
    config_verified(
        dir.path(),
        registry,
        &dir.path().join("store"),
        source,
        keys,
    )
}

/// A P-256 key pair made by openssl, as a user would: (private PEM, public PEM).
fn key_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (private, public) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.pub")),
    );
    let made = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&private)
        .status()
        .expect("openssl is installed");
    assert!(made.success());
    let public_made = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .status()
        .unwrap();
    assert!(public_made.success());
    (private, public)
}

fn push_signed(registry: &Registry, policy: &str, tag: &str, key: &Path) -> String {
    let reference = format!("{}/policies/custom:{tag}", registry.host());
    let mut args = vec!["push", policy, &reference, "--plain-http", "--sign"];
    let key = key.display().to_string();
    args.push(&key);
    let output = bouncer(&args, None);
    assert!(output.status.success(), "push failed: {}", stderr(&output));
    assert!(stderr(&output).contains(".sig"), "{}", stderr(&output));
    stdout(&output).trim().to_owned()
}

#[test]
fn with_verification_on_only_components_signed_by_a_configured_key_load() {
    let Some(mut registry) = Registry::start(false, false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (signer, signer_pub) = key_pair(dir.path(), "signer");
    let (other, other_pub) = key_pair(dir.path(), "other");
    let signed = push_signed(&registry, "alb-target-type-ip", "signed", &signer);
    // A second signer adds its signature beside the first, as cosign does.
    assert_eq!(
        push_signed(&registry, "alb-target-type-ip", "signed", &other),
        signed
    );
    push(&registry, "lb-scheme", "unsigned");
    push_signed(&registry, "ingress-tls", "other", &other);

    for keys in [&[signer_pub.as_path()][..], &[other_pub.as_path()][..]] {
        let loaded = check(&with_keys_config(
            &registry,
            &dir,
            &tagged(&registry, "signed"),
            keys,
        ));
        assert_eq!(
            loaded.status.code(),
            Some(1),
            "{keys:?}: {}",
            stderr(&loaded)
        );
    }

    for (tag, says) in [
        ("unsigned", "it has no cosign signature"),
        ("other", "none of its 1 signature(s) verifies"),
    ] {
        let refused = check(&with_keys_config(
            &registry,
            &dir,
            &tagged(&registry, tag),
            &[&signer_pub],
        ));
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{tag}: {}",
            stdout(&refused)
        );
        let message = stderr(&refused);
        assert!(
            message.contains("policy `custom`")
                && message.contains("is not signed by any of the keys")
                && message.contains(&signer_pub.display().to_string())
                && message.contains(says),
            "{tag}: {message}"
        );
    }

    // Verified once, a pinned digest verifies again from the store alone.
    registry.stop();
    let offline = check(&with_keys_config(&registry, &dir, &signed, &[&signer_pub]));
    assert_eq!(offline.status.code(), Some(1), "{}", stderr(&offline));
    // A key none of the stored signatures verifies with needs the registry: down, it fails closed.
    let (_, stranger_pub) = key_pair(dir.path(), "stranger");
    let refused = check(&with_keys_config(
        &registry,
        &dir,
        &signed,
        &[&stranger_pub],
    ));
    assert_eq!(refused.status.code(), Some(2), "{}", stdout(&refused));
    assert!(
        stderr(&refused).contains("policy `custom`"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn cosign_verifies_what_bouncer_signs_and_bouncer_verifies_what_cosign_signs() {
    let Some(registry) = Registry::start(false, false) else {
        return;
    };
    let cosign = registry::tools().expect("tools are installed when the registry is");
    let dir = tempfile::tempdir().unwrap();
    let (signer, signer_pub) = key_pair(dir.path(), "signer");
    let pinned = push_signed(&registry, "alb-target-type-ip", "1.0", &signer);
    let bare = pinned.strip_prefix("oci://").unwrap();
    let cosign_run = |args: &[&str]| {
        let output = Command::new(cosign)
            .args(args)
            .current_dir(dir.path())
            .env("COSIGN_PASSWORD", "")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "cosign {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let key = signer_pub.display().to_string();
    let verified = cosign_run(&[
        "verify",
        "--key",
        &key,
        "--insecure-ignore-tlog=true",
        "--allow-http-registry",
        bare,
    ]);
    assert!(
        verified.contains("verified against the specified public key"),
        "{verified}"
    );

    // cosign signs with its own (imported, encrypted) key; bouncer verifies that signature.
    let (theirs, _) = key_pair(dir.path(), "cosign-user");
    cosign_run(&[
        "import-key-pair",
        "--key",
        &theirs.display().to_string(),
        "--output-key-prefix",
        "imported",
    ]);
    cosign_run(&[
        "sign",
        "--key",
        "imported.key",
        "--tlog-upload=false",
        "--allow-http-registry",
        "-y",
        bare,
    ]);
    let imported = dir.path().join("imported.pub");
    let path = config_verified(
        dir.path(),
        &registry,
        &dir.path().join("store"),
        &tagged(&registry, "1.0"),
        &[&imported],
    );
    let checked = check(&path);
    assert_eq!(checked.status.code(), Some(1), "{}", stderr(&checked));
}

/// Issue 25, item 8: a tag is recorded as good only once its component
/// loaded. A tag moved to a broken component is refused, and with the
/// registry down afterwards the last component that loaded is served, not
/// the broken one that was pulled.
#[test]
fn the_last_good_tag_is_the_last_component_that_loaded_not_the_last_pulled() {
    use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
    use oci_client::secrets::RegistryAuth;

    let Some(mut registry) = Registry::start(false, false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let good = push(&registry, "alb-target-type-ip", "stable");
    let config = config(
        dir.path(),
        &registry,
        &dir.path().join("store"),
        &tagged(&registry, "stable"),
    );
    let checked = bouncer(&["config", "check", &config.display().to_string()], None);
    assert!(checked.status.success(), "{}", stderr(&checked));

    // The tag now names a core module: pulled fine, loads never.
    bouncer::crypto::install_default_provider();
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    });
    let reference: oci_client::Reference = format!("{}/policies/custom:stable", registry.host())
        .parse()
        .unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let layer = ImageLayer::new(b"\0asm\x01\0\0\0".to_vec(), "application/wasm".into(), None);
        let config = Config::new(
            b"{}".to_vec(),
            bouncer::registry::CONFIG_MEDIA_TYPE.into(),
            None,
        );
        client
            .push(&reference, &[layer], config, &RegistryAuth::Anonymous, None)
            .await
            .unwrap();
    });
    let broken = bouncer(&["config", "check", &config.display().to_string()], None);
    assert_eq!(broken.status.code(), Some(2), "{}", stdout(&broken));

    registry.stop();
    let fallback = bouncer(&["config", "check", &config.display().to_string()], None);
    assert!(fallback.status.success(), "{}", stderr(&fallback));
    let text = stdout(&fallback);
    assert!(text.contains(&format!("custom: {good}")), "{text}");
    assert!(text.contains("serving the last good"), "{text}");
}
