//! The OCI distribution API as bouncer speaks it: manifests, blobs, uploads and
//! token authentication over `reqwest`, with every answer read under a byte
//! bound and every pull under one deadline.
//!
//! Written here rather than taken from `oci-client`'s `Client`, which reads
//! manifests, token answers and error bodies whole: a registry (or a token
//! realm it names) that sends without end grows the host's memory until it
//! dies, and with `failurePolicy: Fail` every replica reloading the same
//! ConfigMap dies together. `oci-client` still gives the reference parser and
//! the manifest types.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode, header};

use super::RegistryOptions;
use super::auth::{Credentials, Secret};
use super::challenge::Challenge;
use super::error::RegistryError;
use super::reference::PolicyRef;

/// A registry that accepts the connection but sends nothing is given this
/// long between two reads; the pull's deadline bounds the whole.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a manifest (or a signature manifest) may be. Real ones are a
/// few KiB; 10,000-entry indexes stay under 2 MiB.
pub(crate) const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// The longest answer of a token realm (a JWT or two and a few fields).
pub(crate) const MAX_TOKEN_BYTES: u64 = 1024 * 1024;
/// What is read of an error's body: enough for the OCI error envelope.
const MAX_ERROR_BYTES: u64 = 64 * 1024;
/// The longest part of a registry's words that goes into a message.
const MAX_QUOTED_CHARS: usize = 300;

/// A manifest's media types bouncer asks for.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json";

/// What went wrong in one exchange with a registry.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// No connection, a reset, a timeout between two reads.
    #[error(
        "cannot reach the registry ({0}); for a registry without TLS, list it under `registry.plainHttp`"
    )]
    Transport(String),
    /// The registry answered with an error status.
    #[error("{}", status_message(*.status, .codes, .message))]
    Status {
        /// The HTTP status.
        status: StatusCode,
        /// The OCI error codes of its body (`MANIFEST_UNKNOWN`, …).
        codes: Vec<String>,
        /// The first error's message, cut.
        message: String,
    },
    /// An answer longer than what bouncer reads of it.
    #[error(
        "the registry's {what} is longer than the {limit} bytes bouncer reads of it; refusing it"
    )]
    TooLong {
        /// What was being read.
        what: &'static str,
        /// The bound.
        limit: u64,
    },
    /// Authentication could not be completed.
    #[error(
        "the registry refused the credentials ({0}); put them in the Docker config.json named by `registry.auth` (or log in with `docker login`)"
    )]
    Auth(String),
    /// Something the protocol requires is missing or malformed.
    #[error("the registry's answer is not what the OCI distribution API specifies: {0}")]
    Protocol(String),
}

impl Failure {
    /// Whether the registry said the manifest (or the repository) does not exist.
    pub(crate) fn is_not_found(&self) -> bool {
        match self {
            Self::Status { status, codes, .. } => {
                *status == StatusCode::NOT_FOUND
                    || codes
                        .iter()
                        .any(|c| c == "MANIFEST_UNKNOWN" || c == "NAME_UNKNOWN")
            }
            _ => false,
        }
    }

    fn transport(error: &reqwest::Error) -> Self {
        let mut text = error.to_string();
        let mut cause = std::error::Error::source(error);
        while let Some(inner) = cause {
            let more = inner.to_string();
            if !text.contains(&more) {
                text = format!("{text}: {more}");
            }
            cause = inner.source();
        }
        Self::Transport(cut(&text))
    }
}

fn status_message(status: StatusCode, codes: &[String], message: &str) -> String {
    let said = match (codes.is_empty(), message.is_empty()) {
        (true, true) => String::new(),
        (false, true) => format!(": {}", codes.join(", ")),
        (true, false) => format!(": {message}"),
        (false, false) => format!(": {} ({message})", codes.join(", ")),
    };
    if status == StatusCode::NOT_FOUND || codes.iter().any(|c| c.ends_with("_UNKNOWN")) {
        format!("no such tag or digest in the registry ({status}{said})")
    } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        format!(
            "the registry refused the credentials ({status}{said}); put them in the Docker \
             config.json named by `registry.auth` (or log in with `docker login`)"
        )
    } else {
        format!("the registry answered {status}{said}")
    }
}

/// At most [`MAX_QUOTED_CHARS`] of `text`, on one line.
fn cut(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match one_line.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}

/// A client for one registry configuration, with the credentials to present
/// and the bearer tokens obtained so far (per scope).
pub(crate) struct Connection {
    http: reqwest::Client,
    plain_http: Vec<String>,
    credentials: Credentials,
    tokens: Mutex<HashMap<String, String>>,
}

/// What a request is for: the token scope it needs.
#[derive(Clone, Copy)]
pub(crate) enum Access {
    Pull,
    Push,
}

impl Connection {
    pub(crate) fn new(options: &RegistryOptions) -> Result<Self, RegistryError> {
        crate::crypto::install_default_provider();
        let mut extra_roots = Vec::new();
        if let Some(path) = &options.ca_bundle {
            let data =
                std::fs::read(path).map_err(|e| RegistryError::file("CA bundle", path, e))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&data)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| {
                    RegistryError::file(
                        "CA bundle",
                        path,
                        "no PEM certificate in it (expected -----BEGIN CERTIFICATE-----)",
                    )
                })?;
            extra_roots.extend(certificates);
        }
        let http = reqwest::Client::builder()
            .tls_certs_merge(extra_roots)
            .read_timeout(READ_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("bouncer/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| {
                RegistryError::registry(&"registry client", Failure::transport(&e).to_string())
            })?;
        Ok(Self {
            http,
            plain_http: options.plain_http.clone(),
            credentials: Credentials::load(options.auth.as_deref())?,
            tokens: Mutex::new(HashMap::new()),
        })
    }

    fn base(&self, reference: &PolicyRef) -> String {
        let registry = reference.registry();
        let scheme = if self.plain_http.iter().any(|h| h == registry) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{registry}/v2/{}", reference.repository())
    }

    /// The manifest `reference` names (its tag or digest), at most
    /// [`MAX_MANIFEST_BYTES`].
    pub(crate) async fn manifest(&self, reference: &PolicyRef) -> Result<Vec<u8>, Failure> {
        let at = reference
            .digest()
            .or(reference.tag())
            .unwrap_or("latest")
            .to_owned();
        let url = format!("{}/manifests/{at}", self.base(reference));
        let response = self
            .send(reference, Access::Pull, || {
                self.http.get(&url).header(header::ACCEPT, MANIFEST_ACCEPT)
            })
            .await?;
        read(response, MAX_MANIFEST_BYTES, "manifest").await
    }

    /// The blob `digest` of `reference`'s repository, at most `limit` bytes.
    pub(crate) async fn blob(
        &self,
        reference: &PolicyRef,
        digest: &str,
        limit: u64,
    ) -> Result<Vec<u8>, Failure> {
        let url = format!("{}/blobs/{digest}", self.base(reference));
        let response = self
            .send(reference, Access::Pull, || self.http.get(&url))
            .await?;
        read(response, limit, "blob").await
    }

    /// Uploads `bytes` as the blob `digest` (monolithic), unless the
    /// repository has it already.
    pub(crate) async fn push_blob(
        &self,
        reference: &PolicyRef,
        digest: &str,
        bytes: &[u8],
    ) -> Result<(), Failure> {
        let base = self.base(reference);
        let head = format!("{base}/blobs/{digest}");
        let exists = self
            .send(reference, Access::Push, || self.http.head(&head))
            .await;
        if exists.is_ok() {
            return Ok(());
        }
        let start = format!("{base}/blobs/uploads/");
        let started = self
            .send(reference, Access::Push, || self.http.post(&start))
            .await?;
        let location = started
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .ok_or_else(|| Failure::Protocol("an upload was started without a Location".into()))?;
        let mut upload = started.url().join(location).map_err(|e| {
            Failure::Protocol(format!("the upload Location `{}`: {e}", cut(location)))
        })?;
        upload.query_pairs_mut().append_pair("digest", digest);
        let body = bytes.to_vec();
        self.send(reference, Access::Push, || {
            self.http
                .request(Method::PUT, upload.clone())
                .header(header::CONTENT_TYPE, "application/octet-stream")
                .body(body.clone())
        })
        .await?;
        Ok(())
    }

    /// Stores `bytes` as the manifest under `reference`'s tag.
    pub(crate) async fn push_manifest(
        &self,
        reference: &PolicyRef,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), Failure> {
        let tag = reference.tag().unwrap_or("latest");
        let url = format!("{}/manifests/{tag}", self.base(reference));
        let body = bytes.to_vec();
        self.send(reference, Access::Push, || {
            self.http
                .put(&url)
                .header(header::CONTENT_TYPE, media_type)
                .body(body.clone())
        })
        .await?;
        Ok(())
    }

    /// Sends the request `build` makes, answering one authentication
    /// challenge (bearer token or basic) if the registry poses it. A
    /// non-success answer becomes a [`Failure::Status`] read from a bounded
    /// body.
    async fn send(
        &self,
        reference: &PolicyRef,
        access: Access,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, Failure> {
        let scope = scope(reference, access);
        let known = self.token(&scope);
        let request = match &known {
            Some(token) => build().bearer_auth(token),
            None => build(),
        };
        let response = request.send().await.map_err(|e| Failure::transport(&e))?;
        let response = if response.status() == StatusCode::UNAUTHORIZED {
            let challenge = response
                .headers()
                .get(header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .unwrap_or_default();
            drop(response);
            let secret = self.credentials.for_registry(reference.registry());
            let retry = if let Some(bearer) = Challenge::parse(&challenge) {
                let token = self.fetch_token(&bearer, &scope, secret).await?;
                self.remember(&scope, &token);
                build().bearer_auth(token)
            } else if let Some(secret) = secret {
                build().basic_auth(&secret.user, Some(&secret.password))
            } else {
                return Err(Failure::Auth(
                    "it asks for credentials and none are configured for this registry".into(),
                ));
            };
            retry.send().await.map_err(|e| Failure::transport(&e))?
        } else {
            response
        };
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(status_failure(response).await)
        }
    }

    fn token(&self, scope: &str) -> Option<String> {
        self.tokens.lock().ok()?.get(scope).cloned()
    }

    fn remember(&self, scope: &str, token: &str) {
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.insert(scope.to_owned(), token.to_owned());
        }
    }

    /// A bearer token from the realm the registry named, presenting the
    /// configured credentials (if any) as basic authentication.
    async fn fetch_token(
        &self,
        challenge: &Challenge,
        scope: &str,
        secret: Option<&Secret>,
    ) -> Result<String, Failure> {
        let mut url = reqwest::Url::parse(&challenge.realm).map_err(|e| {
            Failure::Protocol(format!("the token realm `{}`: {e}", cut(&challenge.realm)))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Failure::Protocol(format!(
                "the token realm `{}` is not an HTTP(S) URL",
                cut(&challenge.realm)
            )));
        }
        {
            let mut query = url.query_pairs_mut();
            if let Some(service) = &challenge.service {
                query.append_pair("service", service);
            }
            query.append_pair("scope", scope);
        }
        let mut request = self.http.get(url);
        if let Some(secret) = secret {
            request = request.basic_auth(&secret.user, Some(&secret.password));
        }
        let response = request.send().await.map_err(|e| Failure::transport(&e))?;
        if !response.status().is_success() {
            let status = response.status();
            let failure = status_failure(response).await;
            return Err(Failure::Auth(format!(
                "the token service answered {status}: {failure}"
            )));
        }
        let body = read(response, MAX_TOKEN_BYTES, "token answer").await?;
        #[derive(serde::Deserialize)]
        struct Answer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let answer: Answer = serde_json::from_slice(&body)
            .map_err(|e| Failure::Protocol(format!("the token answer is not JSON: {e}")))?;
        answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Failure::Protocol("the token answer holds no token".into()))
    }
}

/// `repository:<name>:pull` (or `pull,push`): the token scope of `reference`.
fn scope(reference: &PolicyRef, access: Access) -> String {
    let actions = match access {
        Access::Pull => "pull",
        Access::Push => "pull,push",
    };
    format!("repository:{}:{actions}", reference.repository())
}

/// Reads `response`'s body, refusing it as soon as it is known to exceed
/// `limit`: by its `Content-Length` before reading, or by the bytes as they
/// arrive (a body without a length, or one that lies).
async fn read(mut response: Response, limit: u64, what: &'static str) -> Result<Vec<u8>, Failure> {
    let too_long = || Failure::TooLong { what, limit };
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(too_long());
    }
    let capacity = response.content_length().unwrap_or(0).min(limit);
    let mut body = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
    while let Some(chunk) = response.chunk().await.map_err(|e| Failure::transport(&e))? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(too_long());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The failure an error answer describes, from at most [`MAX_ERROR_BYTES`]
/// of its body (the rest is never read).
async fn status_failure(mut response: Response) -> Failure {
    let status = response.status();
    let mut body = Vec::new();
    while (body.len() as u64) < MAX_ERROR_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(chunk.as_ref()),
            _ => break,
        }
    }
    body.truncate(MAX_ERROR_BYTES as usize);
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(default)]
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let (codes, message) = match serde_json::from_slice::<Envelope>(&body) {
        Ok(envelope) => (
            envelope
                .errors
                .iter()
                .map(|e| cut(&e.code))
                .take(4)
                .collect(),
            envelope
                .errors
                .first()
                .map(|e| cut(&e.message))
                .unwrap_or_default(),
        ),
        Err(_) => (Vec::new(), cut(String::from_utf8_lossy(&body).trim())),
    };
    Failure::Status {
        status,
        codes,
        message,
    }
}

/// `work`, given up once `deadline` has passed: one bound on a whole
/// exchange, which per-read timeouts are not (a registry dripping a byte a
/// second resets them forever).
pub(crate) async fn within<T>(
    deadline: tokio::time::Instant,
    timeout: Duration,
    what: &(dyn std::fmt::Display + Sync),
    work: impl Future<Output = Result<T, RegistryError>>,
) -> Result<T, RegistryError> {
    match tokio::time::timeout_at(deadline, work).await {
        Ok(result) => result,
        Err(_) => Err(RegistryError::registry(
            &what.to_string(),
            format!(
                "the registry did not answer within {} (`registry.timeout`): it is unreachable, \
                 stalls or sends too slowly",
                humantime::format_duration(timeout)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_words_are_cut_to_one_line() {
        let long = "x".repeat(10_000);
        assert_eq!(cut(&long).chars().count(), MAX_QUOTED_CHARS + 1);
        assert_eq!(cut("a\nb"), "a b");
    }
}
