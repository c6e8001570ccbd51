//! Decoding `AdmissionReview` bodies, strictly: what the API server sends and nothing else.

use base64::Engine as _;
use kube::core::TypeMeta;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};

use super::object::RawObject;

/// The admission request type bouncer works with: any kind, its objects kept as raw JSON.
pub type Request = AdmissionRequest<RawObject>;

/// The only review version bouncer speaks.
pub const API_VERSION: &str = "admission.k8s.io/v1";
/// The kind of a review.
pub const KIND: &str = "AdmissionReview";

/// Why a review body could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// Not JSON, or JSON not shaped like an AdmissionReview.
    #[error("not a valid AdmissionReview")]
    Json(#[source] serde_json::Error),
    /// Not YAML or JSON at all (files given to the CLI).
    #[error("not valid YAML or JSON")]
    Yaml(#[source] crate::manifest::yaml::YamlError),
    /// `apiVersion`/`kind` are not `admission.k8s.io/v1` `AdmissionReview`.
    #[error(
        "expected apiVersion `{API_VERSION}` and kind `{KIND}`, got apiVersion `{api_version}` and kind `{kind}`"
    )]
    WrongType {
        /// The apiVersion found.
        api_version: String,
        /// The kind found.
        kind: String,
    },
    /// The review has no `request`.
    #[error("the AdmissionReview has no `request`")]
    MissingRequest,
    /// The request has an empty `uid`.
    #[error("the admission request has an empty `uid`")]
    MissingUid,
}

/// Decodes an `AdmissionReview` JSON body as the API server sends it.
pub fn decode(body: &[u8]) -> Result<Request, ReviewError> {
    let review: AdmissionReview<RawObject> =
        serde_json::from_slice(body).map_err(ReviewError::Json)?;
    from_review(review)
}

/// Decodes a file given by a person: an `AdmissionReview` or a bare
/// `AdmissionRequest`, in JSON or YAML.
pub fn decode_document(text: &str) -> Result<Request, ReviewError> {
    let value: serde_json::Value =
        crate::manifest::yaml::from_str(text).map_err(ReviewError::Yaml)?;
    // A bare request's `kind` is a group/version/kind map; a review's is a string.
    let is_review = value.get("apiVersion").is_some()
        || value.get("kind").is_some_and(serde_json::Value::is_string)
        || value.get("request").is_some();
    // Through text, because raw objects keep the JSON text they were read from.
    let json = value.to_string();
    if is_review {
        return decode(json.as_bytes());
    }
    let mut request: Request = serde_json::from_str(&json).map_err(ReviewError::Json)?;
    request.types = review_type();
    check_uid(request)
}

fn from_review(review: AdmissionReview<RawObject>) -> Result<Request, ReviewError> {
    if review.types.api_version != API_VERSION || review.types.kind != KIND {
        return Err(ReviewError::WrongType {
            api_version: review.types.api_version,
            kind: review.types.kind,
        });
    }
    let request: Request = review.try_into().map_err(|_| ReviewError::MissingRequest)?;
    check_uid(request)
}

fn check_uid(request: Request) -> Result<Request, ReviewError> {
    if request.uid.trim().is_empty() {
        return Err(ReviewError::MissingUid);
    }
    Ok(request)
}

/// The `TypeMeta` of a v1 review, for responses to bare requests.
pub fn review_type() -> TypeMeta {
    TypeMeta {
        api_version: API_VERSION.to_owned(),
        kind: KIND.to_owned(),
    }
}

/// Encodes the response review the API server expects, as JSON.
pub fn encode(response: AdmissionResponse) -> serde_json::Value {
    serde_json::to_value(Wire::of(&response))
        .unwrap_or_else(|_| serde_json::json!({"apiVersion": API_VERSION, "kind": KIND}))
}

/// Encodes the response review the API server expects, as the bytes of a
/// response body (one serialisation, no intermediate JSON tree).
pub fn encode_body(response: &AdmissionResponse) -> Vec<u8> {
    // Serialising strings, booleans and maps of strings into memory cannot fail.
    serde_json::to_vec(&Wire::of(response)).unwrap_or_default()
}

/// A response review as it goes on the wire.
///
/// kube's `AdmissionResponse` serialises `patch` as an array of numbers; the
/// API's wire form (and what every webhook sends) is a base64 string, so the
/// review is written out here, borrowing the response's fields.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: WireResponse<'a>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct WireResponse<'a> {
    uid: &'a str,
    allowed: bool,
    status: &'a kube::core::Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "no_annotations")]
    audit_annotations: &'a std::collections::HashMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<&'a Vec<String>>,
}

fn no_annotations(annotations: &&std::collections::HashMap<String, String>) -> bool {
    annotations.is_empty()
}

impl<'a> Wire<'a> {
    fn of(response: &'a AdmissionResponse) -> Self {
        Self {
            api_version: API_VERSION,
            kind: KIND,
            response: WireResponse {
                uid: &response.uid,
                allowed: response.allowed,
                status: &response.result,
                patch: response
                    .patch
                    .as_ref()
                    .map(|p| base64::engine::general_purpose::STANDARD.encode(p)),
                // kube sets the (private) patch type with the patch; JSONPatch is the only one.
                patch_type: response.patch.as_ref().map(|_| "JSONPatch"),
                audit_annotations: &response.audit_annotations,
                warnings: response.warnings.as_ref(),
            },
        }
    }
}
