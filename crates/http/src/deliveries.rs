//! The delivery log over REST: why did a delivery do nothing?

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use ephemera_application::PageRequest;
use ephemera_application::delivery_log::{GetDeliveryError, ListDeliveriesError};
use ephemera_application::ports::DeliveryFilter;
use ephemera_domain::{DeliveryId, DeliveryOutcome, DeliveryRecord};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::environments::{page_problem, validation_detail};
use crate::pagination::next_link;
use crate::{AppState, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryBody {
    delivery_id: String,
    event: String,
    action: Option<String>,
    repository: Option<String>,
    installation_id: Option<i64>,
    /// applied, ignored, duplicate or failed
    #[schema(example = "ignored")]
    outcome: &'static str,
    reason: Option<String>,
    attempts: i32,
    received_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<DeliveryRecord> for DeliveryBody {
    fn from(d: DeliveryRecord) -> Self {
        Self {
            delivery_id: d.delivery_id.to_string(),
            event: d.event,
            action: d.action,
            repository: d.repository,
            installation_id: d.installation_id.map(|i| i.get()),
            outcome: d.outcome.as_str(),
            reason: d.reason,
            attempts: d.attempts,
            received_at: d.received_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, Validate, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    #[validate(length(min = 1, max = 64))]
    event: Option<String>,
    outcome: Option<String>,
    #[validate(range(min = 1, max = 200))]
    limit: Option<u32>,
    cursor: Option<String>,
}

/// `GET /api/v1/deliveries`: newest first, filters `event` and `outcome`.
#[utoipa::path(get, path = "/api/v1/deliveries", operation_id = "list_deliveries", tag = "deliveries", params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The delivery log, newest first", body = [DeliveryBody]), (status = 400, description = "Malformed input; `detail` says what", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No or wrong bearer token: reads need EPHEMERA_API_TOKEN unless anonymous reads are on", body = Problem, content_type = "application/problem+json"), (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    query
        .validate()
        .map_err(|e| Problem::bad_request(validation_detail(&e)))?;
    let filter = DeliveryFilter {
        event: query.event.clone(),
        outcome: query
            .outcome
            .as_deref()
            .map(str::parse::<DeliveryOutcome>)
            .transpose()
            .map_err(|e| Problem::bad_request(e.to_string()))?,
    };
    let page = PageRequest::parse(query.limit, query.cursor.as_deref()).map_err(page_problem)?;
    let result = state
        .deliveries
        .list(&filter, page)
        .await
        .map_err(|ListDeliveriesError::Failed(failure)| Problem::from(failure))?;
    let mut response = HttpResponse::Ok();
    if let Some(next) = result.next {
        response.insert_header((header::LINK, next_link(&req, next)));
    }
    let body: Vec<DeliveryBody> = result.items.into_iter().map(Into::into).collect();
    Ok(response.json(body))
}

/// `GET /api/v1/deliveries/{delivery_id}`.
#[utoipa::path(get, path = "/api/v1/deliveries/{delivery_id}", operation_id = "get_delivery", tag = "deliveries",
    params(("delivery_id" = String, Path, description = "The X-GitHub-Delivery id")),
    security(("bearer" = [])),
    responses((status = 200, description = "The delivery and what became of it", body = DeliveryBody), (status = 400, description = "Malformed input; `detail` says what", body = Problem, content_type = "application/problem+json"), (status = 404, description = "No such resource", body = Problem, content_type = "application/problem+json"), (status = 401, description = "No or wrong bearer token: reads need EPHEMERA_API_TOKEN unless anonymous reads are on", body = Problem, content_type = "application/problem+json"), (status = 503, description = "The database is unavailable; retry after `Retry-After` seconds", body = Problem, content_type = "application/problem+json")))]
pub(crate) async fn get(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let id = DeliveryId::parse(&path).map_err(|e| Problem::bad_request(e.to_string()))?;
    let record = state.deliveries.get(&id).await.map_err(|err| match err {
        GetDeliveryError::NotFound(_) => Problem::not_found(err.to_string()),
        GetDeliveryError::Failed(failure) => failure.into(),
    })?;
    Ok(HttpResponse::Ok().json(DeliveryBody::from(record)))
}
