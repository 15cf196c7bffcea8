//! `POST /api/v1/github/webhook`: verified, idempotent ingestion.
//!
//! The endpoint faces the internet, so everything that can be refused from
//! the request head is refused before a byte of the body is read: secret
//! configured (503), `X-Hub-Signature-256` present and well-formed (401),
//! `X-GitHub-Event` / `X-GitHub-Delivery` present (400), announced
//! `Content-Length` within the limit (413). The body is then read under a
//! deadline (408), within the size limit (413) and a process-wide memory
//! budget shared by all bodies (503 with `Retry-After`), kept as the chunks
//! that arrived. Then the signature is checked over them (401), the JSON read
//! (400), and the delivery applied in one transaction before the answer.
//! Each refusal is a problem+json that says what was wrong and never
//! echoes a secret.

mod budget;
mod payloads;
mod signature;

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use actix_web::{HttpRequest, HttpResponse, web};
use ephemera_application::ports::DeliveryHeader;
use ephemera_application::webhooks::IngestError;
use ephemera_domain::DeliveryId;
use futures::StreamExt as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use utoipa::ToSchema;

pub(crate) use budget::BodyBudget;
use budget::Charge;
use signature::Signature;
pub use signature::sign;

/// Checks an `X-Hub-Signature-256` value against `body` (for tools and the
/// fuzz target; the endpoint does the same).
pub fn verify_signature(secret: &[u8], body: &[u8], header: Option<&str>) -> Result<(), String> {
    signature::verify(secret, body, header).map_err(|e| e.detail().to_owned())
}

/// Reads a verified delivery's body into what the use case applies, or
/// says why it cannot (for tools and the fuzz target; the endpoint does the
/// same).
pub fn read_delivery(
    event: &str,
    delivery_id: DeliveryId,
    body: &[u8],
) -> Result<ephemera_application::webhooks::IncomingDelivery, String> {
    payloads::parse(event, delivery_id, body).map_err(|e| e.0)
}

use crate::{AppState, Problem};

/// GitHub's own cap on a delivery's payload.
pub const DEFAULT_MAX_BODY_BYTES: usize = 25 * 1024 * 1024;
/// Room for a body of GitHub's maximum size and the one copy made of it
/// once its signature checks out, or hundreds of ordinary bodies.
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 64 * 1024 * 1024;
/// GitHub gives up on a delivery after 10 s.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Shorter secrets are placeholders or guessable: whoever knows the secret
/// can forge deliveries.
pub const MIN_SECRET_CHARS: usize = 16;

/// How the webhook endpoint is configured.
#[derive(Clone)]
pub struct WebhookSettings {
    /// `GITHUB_WEBHOOK_SECRET`; without it every delivery gets a 503.
    pub secret: Option<SecretString>,
    /// `EPHEMERA_WEBHOOK_MAX_BYTES`: the largest body accepted.
    pub max_body_bytes: usize,
    /// `EPHEMERA_WEBHOOK_MAX_BUFFERED_BYTES`: memory all bodies being read
    /// or handled may hold together; at least twice `max_body_bytes` (a
    /// signed body is copied once for the JSON parser).
    pub max_buffered_bytes: usize,
    /// `EPHEMERA_WEBHOOK_READ_TIMEOUT`: the whole body must arrive within it.
    pub read_timeout: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            secret: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            read_timeout: DEFAULT_READ_TIMEOUT,
        }
    }
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_buffered_bytes", &self.max_buffered_bytes)
            .field("read_timeout", &self.read_timeout)
            .finish()
    }
}

/// What became of a delivery.
#[derive(Serialize, ToSchema)]
pub(crate) struct Answer<'a> {
    delivery_id: &'a str,
    event: &'a str,
    action: Option<&'a str>,
    /// applied, ignored or duplicate
    outcome: &'static str,
    reason: Option<&'a str>,
}

/// A refusal, and the fixed `reason` label it is counted under in
/// `ephemera_webhook_refusals_total` (none for signed deliveries, which the
/// delivery counter already sees).
struct Refusal(Option<&'static str>, Problem);

impl From<Problem> for Refusal {
    fn from(problem: Problem) -> Self {
        Self(None, problem)
    }
}

fn refuse(reason: &'static str, problem: Problem) -> Refusal {
    Refusal(Some(reason), problem)
}

fn too_large(limit: usize) -> Refusal {
    refuse(
        "too_large",
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("the body is larger than {limit} bytes (EPHEMERA_WEBHOOK_MAX_BYTES)"),
        ),
    )
}

fn busy() -> Refusal {
    refuse(
        "busy",
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many webhook bodies are being received at once (EPHEMERA_WEBHOOK_MAX_BUFFERED_BYTES); redeliver this delivery later",
        )
        .with_header(RETRY_AFTER, "5"),
    )
}

/// A body as it arrived: the chunks actix read, kept as they are (no
/// copies, no buffer sized in advance), each charged to the budget before
/// it is kept.
struct Chunks {
    chunks: Vec<web::Bytes>,
    len: usize,
}

/// Reads the body as it arrives, refusing it as soon as it passes `limit`
/// or the budget cannot hold the next chunk.
async fn read_body(
    mut payload: web::Payload,
    limit: usize,
    charge: &mut Charge,
) -> Result<Chunks, Refusal> {
    let mut body = Chunks {
        chunks: Vec::new(),
        len: 0,
    };
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            refuse(
                "unreadable",
                Problem::bad_request(format!("reading the body: {e}")),
            )
        })?;
        let len = body.len + chunk.len();
        if len > limit {
            return Err(too_large(limit));
        }
        if !charge.grow_to(len) {
            return Err(busy());
        }
        body.len = len;
        body.chunks.push(chunk);
    }
    Ok(body)
}

/// One contiguous copy of a verified body, for the JSON parser. The copy
/// is charged too while both exist; only signed bodies get this far.
fn contiguous(body: Chunks, charge: &mut Charge) -> Result<web::Bytes, Refusal> {
    let Chunks { mut chunks, len } = body;
    if chunks.len() <= 1 {
        return Ok(chunks.pop().unwrap_or_default());
    }
    if !charge.grow_to(len.saturating_mul(2)) {
        return Err(busy());
    }
    let mut whole = Vec::with_capacity(len);
    for chunk in chunks {
        whole.extend_from_slice(&chunk);
    }
    charge.shrink_to(len);
    Ok(whole.into())
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// What the request head says, checked before the body is read.
struct Head<'a> {
    signature: Signature,
    event: &'a str,
    delivery_id: DeliveryId,
}

fn read_head(req: &HttpRequest, limit: usize) -> Result<Head<'_>, Refusal> {
    let signature = Signature::parse(header(req, "x-hub-signature-256")).map_err(|e| {
        refuse(
            "unsigned",
            Problem::new(StatusCode::UNAUTHORIZED, "bad-signature", e.detail()),
        )
    })?;
    let missing = |detail: String| refuse("missing_header", Problem::bad_request(detail));
    let event = header(req, "x-github-event")
        .ok_or_else(|| missing("the X-GitHub-Event header is missing".to_owned()))?;
    if !crate::params::is_event_name(event) {
        return Err(missing(format!(
            "X-GitHub-Event: `{event}` is not an event name (lowercase letters, digits and `_`)"
        )));
    }
    let raw_id = header(req, "x-github-delivery")
        .ok_or_else(|| missing("the X-GitHub-Delivery header is missing".to_owned()))?;
    let delivery_id =
        DeliveryId::parse(raw_id).map_err(|e| missing(format!("X-GitHub-Delivery: {e}")))?;
    // Only a refusal: what the client announces never sizes a buffer.
    let announced = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|len| len > limit as u64) {
        return Err(too_large(limit));
    }
    Ok(Head {
        signature,
        event,
        delivery_id,
    })
}

/// GitHub webhook deliveries; see docs/webhooks.md.
#[utoipa::path(post, path = "/api/v1/github/webhook", operation_id = "receive_webhook", tag = "webhooks",
    params(
        // Patterns as in params.rs (EVENT, DELIVERY_ID, SIGNATURE); a test
        // holds them equal.
        ("X-GitHub-Event" = String, Header, description = "Event name, e.g. pull_request", pattern = r"^[a-z0-9_]{1,64}$"),
        ("X-GitHub-Delivery" = String, Header, description = "Delivery GUID", pattern = r"^[A-Za-z0-9-]{1,64}$"),
        ("X-Hub-Signature-256" = String, Header, description = "sha256=<HMAC-SHA256 of the body with the webhook secret>", pattern = r"^sha256=[0-9a-fA-F]{64}$"),
    ),
    request_body(content = crate::params::WebhookPayload, content_type = "application/json", description = "The event payload as GitHub sends it: a JSON object. Every event is read for the fields described here; `ping`, `pull_request`, `installation` and `installation_repositories` are also read for the fields GitHub's payload of that event carries (see docs/webhooks.md), other events for nothing more"),
    responses(
        (status = 200, description = "Recorded; `outcome` says what became of it", body = Answer),
        (status = 400, description = "Malformed input; `detail` says what", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, malformed (refused before the body is read) or wrong signature", body = Problem, content_type = "application/problem+json"),
        (status = 408, description = "The body did not arrive within EPHEMERA_WEBHOOK_READ_TIMEOUT", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body (or its announced Content-Length) over EPHEMERA_WEBHOOK_MAX_BYTES", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No GITHUB_WEBHOOK_SECRET, the database is unavailable, or bodies in flight fill EPHEMERA_WEBHOOK_MAX_BUFFERED_BYTES (with Retry-After)", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(delivery, event))]
pub(crate) async fn receive(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
    bodies: web::Data<BodyBudget>,
) -> Result<HttpResponse, Problem> {
    // Held until the answer: the body lives as long as the handler.
    let mut charge = BodyBudget::charge(bodies.into_inner());
    match receive_checked(&req, payload, &state, &mut charge).await {
        Ok(response) => Ok(response),
        Err(Refusal(reason, problem)) => {
            if let Some(reason) = reason {
                state.metrics.observe_refusal(reason);
            }
            Err(problem)
        }
    }
}

async fn receive_checked(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
    charge: &mut Charge,
) -> Result<HttpResponse, Refusal> {
    let settings = &state.webhook;
    let Some(secret) = &settings.secret else {
        return Err(refuse(
            "not_configured",
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "webhook-not-configured",
                "webhooks are off: set GITHUB_WEBHOOK_SECRET to the secret configured on the GitHub App",
            ),
        ));
    };
    let Head {
        signature,
        event,
        delivery_id,
    } = read_head(req, settings.max_body_bytes)?;
    tracing::Span::current()
        .record("delivery", delivery_id.as_str())
        .record("event", event);

    let body = actix_web::rt::time::timeout(
        settings.read_timeout,
        read_body(payload, settings.max_body_bytes, charge),
    )
    .await
    .map_err(|_| {
        refuse(
            "timeout",
            Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "request-timeout",
                format!(
                    "the body did not arrive within {:?} (EPHEMERA_WEBHOOK_READ_TIMEOUT)",
                    settings.read_timeout
                ),
            ),
        )
    })??;

    // Verified over the chunks as they are: a wrongly signed body is
    // never copied.
    signature
        .verify_chunks(secret.expose_secret().as_bytes(), &body.chunks)
        .map_err(|e| {
            refuse(
                "bad_signature",
                Problem::new(StatusCode::UNAUTHORIZED, "bad-signature", e.detail()),
            )
        })?;
    let body = contiguous(body, charge)?;

    let delivery = match payloads::parse(event, delivery_id.clone(), &body) {
        Ok(delivery) => delivery,
        Err(err) => {
            let mut detail = err.0;
            let form = header(req, CONTENT_TYPE.as_str())
                .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
            if form {
                detail.push_str("; set the webhook's content type to application/json");
            }
            // Signed, so it is GitHub's (or holds our secret): worth a line
            // in the delivery log for the operator.
            let header = DeliveryHeader {
                delivery_id,
                event: event.to_owned(),
                action: None,
                repository: None,
                installation_id: None,
                body_sha256: None,
            };
            state.ingest.record_unreadable(&header, &detail).await;
            state.metrics.observe_delivery(event, "failed");
            return Err(Problem::bad_request(detail).into());
        }
    };

    let outcome = state
        .ingest
        .ingest(&delivery)
        .await
        .map_err(|err| match err {
            IngestError::Unavailable(cause) => Problem::unavailable(
                &cause,
                "the database is unavailable; redeliver this delivery later",
            ),
            IngestError::Incomplete(what) => Problem::bad_request(what),
            IngestError::Unexpected(e) => Problem::internal(&e),
        })?;
    state
        .metrics
        .observe_delivery(event, outcome.outcome.as_str());
    Ok(HttpResponse::Ok().json(Answer {
        delivery_id: delivery.delivery_id.as_str(),
        event,
        action: delivery.action.as_deref(),
        outcome: outcome.outcome.as_str(),
        reason: outcome.reason.as_deref(),
    }))
}
