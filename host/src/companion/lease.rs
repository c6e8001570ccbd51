//! Leader election on a `coordination.k8s.io` Lease, as client-go does it:
//! the holder renews `renewTime` well within `leaseDurationSeconds`; another
//! candidate takes the Lease over only once it has not been renewed for that
//! long. Every write carries the `resourceVersion` it read, so two candidates
//! racing for an expired Lease cannot both win: the API server refuses the
//! second write (409) and it stays a follower.
//!
//! Written here rather than taken from a crate: the leader-election crates
//! for kube-rs pin older kube majors (their `Client` is another type).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::PostParams;

/// One candidate for a Lease.
pub(crate) struct LeaseLock {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
}

impl LeaseLock {
    /// A candidate named `identity` for the Lease `name` in `namespace`,
    /// held for `duration` after each renewal.
    pub(crate) fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            identity: identity.to_owned(),
            duration,
        }
    }

    /// Takes or renews the Lease when it is this candidate's or free; whether
    /// this candidate holds it now.
    ///
    /// # Errors
    /// The API server could not be asked; the caller must then assume it
    /// does not hold the Lease once its last renewal is `duration` old.
    pub(crate) async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(now, now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                Err(error) => Err(error),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.as_deref().unwrap_or_default();
        let ours = holder == self.identity;
        let seconds = i64::from(spec.lease_duration_seconds.unwrap_or(0));
        let expired = spec
            .renew_time
            .as_ref()
            .is_none_or(|renewed| renewed.0 + SignedDuration::from_secs(seconds) < now);
        if !ours && !holder.is_empty() && !expired {
            return Ok(false);
        }
        let (acquired, transitions) = if ours {
            (
                spec.acquire_time.map_or(now, |t| t.0),
                spec.lease_transitions.unwrap_or(0),
            )
        } else {
            (now, spec.lease_transitions.unwrap_or(0) + 1)
        };
        lease.spec = Some(self.spec(now, acquired, transitions));
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            // Another candidate wrote first.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(error) => Err(error),
        }
    }

    fn spec(&self, now: Timestamp, acquired: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX),
            ),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }
}
