//! `POST /api/v1/github/webhook`: verified, idempotent ingestion.
//!
//! Checks run in this order, each refusal a problem+json that says what was
//! wrong and never echoes a secret: secret configured (503), body size
//! (413), signature (401), `X-GitHub-Event` / `X-GitHub-Delivery` (400),
//! JSON (400). Only then is the delivery applied, in one transaction,
//! before the answer.

mod payloads;
mod signature;

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use ephemera_application::ports::DeliveryHeader;
use ephemera_application::webhooks::IngestError;
use ephemera_domain::DeliveryId;
use futures::StreamExt as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use utoipa::ToSchema;

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

/// How the webhook endpoint is configured.
#[derive(Clone)]
pub struct WebhookSettings {
    /// `GITHUB_WEBHOOK_SECRET`; without it every delivery gets a 503.
    pub secret: Option<SecretString>,
    pub max_body_bytes: usize,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("max_body_bytes", &self.max_body_bytes)
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

fn too_large(limit: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        format!("the body is larger than {limit} bytes (EPHEMERA_WEBHOOK_MAX_BYTES)"),
    )
}

/// Reads the body, refusing it as soon as it passes `limit`.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, Problem> {
    let announced = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|len| len > limit) {
        return Err(too_large(limit));
    }
    let mut body = web::BytesMut::with_capacity(announced.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| Problem::bad_request(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// GitHub webhook deliveries; see docs/webhooks.md.
#[utoipa::path(post, path = "/api/v1/github/webhook", operation_id = "receive_webhook", tag = "webhooks",
    params(
        ("X-GitHub-Event" = String, Header, description = "Event name, e.g. pull_request"),
        ("X-GitHub-Delivery" = String, Header, description = "Delivery GUID"),
        ("X-Hub-Signature-256" = String, Header, description = "sha256=<HMAC-SHA256 of the body with the webhook secret>"),
    ),
    request_body(content = Object, content_type = "application/json", description = "The event payload as GitHub sends it"),
    responses(
        (status = 200, description = "Recorded; `outcome` says what became of it", body = Answer),
        (status = 400, description = "Malformed input; `detail` says what", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or wrong signature", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over EPHEMERA_WEBHOOK_MAX_BYTES", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "No GITHUB_WEBHOOK_SECRET, or the database is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
#[tracing::instrument(skip_all, fields(delivery, event))]
pub(crate) async fn receive(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let settings = &state.webhook;
    let Some(secret) = &settings.secret else {
        return Err(Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhook-not-configured",
            "webhooks are off: set GITHUB_WEBHOOK_SECRET to the secret configured on the GitHub App",
        ));
    };
    let body = read_body(&req, payload, settings.max_body_bytes).await?;

    signature::verify(
        secret.expose_secret().as_bytes(),
        &body,
        header(&req, "x-hub-signature-256"),
    )
    .map_err(|e| Problem::new(StatusCode::UNAUTHORIZED, "bad-signature", e.detail()))?;

    let event = header(&req, "x-github-event")
        .ok_or_else(|| Problem::bad_request("the X-GitHub-Event header is missing"))?;
    let raw_id = header(&req, "x-github-delivery")
        .ok_or_else(|| Problem::bad_request("the X-GitHub-Delivery header is missing"))?;
    let delivery_id = DeliveryId::parse(raw_id)
        .map_err(|e| Problem::bad_request(format!("X-GitHub-Delivery: {e}")))?;
    tracing::Span::current()
        .record("delivery", delivery_id.as_str())
        .record("event", event);

    let delivery = match payloads::parse(event, delivery_id.clone(), &body) {
        Ok(delivery) => delivery,
        Err(err) => {
            let mut detail = err.0;
            let form = header(&req, CONTENT_TYPE.as_str())
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
            return Err(Problem::bad_request(detail));
        }
    };

    let outcome = state
        .ingest
        .ingest(&delivery)
        .await
        .map_err(|err| match err {
            IngestError::Unavailable(why) => {
                tracing::warn!(error = %why, "database unavailable; GitHub should redeliver");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the database is unavailable; redeliver this delivery later",
                )
            }
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
