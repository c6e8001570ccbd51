//! The kubelet's prober: startup first, then readiness (which drives the
//! endpoint) and liveness, each over HTTP on its period.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::endpoints::Slices;
use super::{Probing, named_port};

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
pub(super) fn probe(container: &Value, ip: &str, probing: &Probing, slices: &Slices) {
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
