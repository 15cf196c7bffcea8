//! The delivery log over REST: why did a delivery do nothing?

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
use crate::pagination::page_response;
use crate::responses::{ReadErrors, ReadOneErrors};
use crate::{AppState, Problem, params};

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
    /// An event name, e.g. `pull_request`.
    #[param(schema_with = params::event)]
    event: Option<String>,
    /// What became of the delivery.
    #[param(schema_with = params::delivery_outcome)]
    outcome: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[validate(range(min = 1, max = 200))]
    #[param(schema_with = params::limit)]
    limit: Option<u32>,
    /// Where the next page starts; take it from the `Link` header.
    #[param(schema_with = params::cursor)]
    cursor: Option<String>,
}

/// The `{delivery_id}` of `/deliveries/{delivery_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct DeliveryPath {
    /// The X-GitHub-Delivery id
    #[param(schema_with = params::delivery_id)]
    delivery_id: String,
}

/// `GET /api/v1/deliveries`: newest first, filters `event` and `outcome`.
#[utoipa::path(get, path = "/api/v1/deliveries", operation_id = "list_deliveries", tag = "deliveries", params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The delivery log, newest first", body = [DeliveryBody]), ReadErrors))]
pub(crate) async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    query
        .validate()
        .map_err(|e| Problem::bad_request(validation_detail(&e)))?;
    if let Some(event) = query.event.as_deref().filter(|e| !params::is_event_name(e)) {
        return Err(Problem::bad_request(format!(
            "event: `{event}` is not an event name (lowercase letters, digits and `_`, e.g. pull_request)"
        )));
    }
    let filter = DeliveryFilter {
        event: query.event.clone(),
        outcome: query
            .outcome
            .as_deref()
            .map(str::parse::<DeliveryOutcome>)
            .transpose()
            .map_err(|e| Problem::bad_request(e.to_string()))?,
        within: None,
    };
    let page = PageRequest::parse(query.limit, query.cursor.as_deref()).map_err(page_problem)?;
    let result = state
        .deliveries
        .list(&filter, page)
        .await
        .map_err(|ListDeliveriesError::Failed(failure)| Problem::from(failure))?;
    Ok(page_response(&req, result, DeliveryBody::from))
}

/// `GET /api/v1/deliveries/{delivery_id}`.
#[utoipa::path(get, path = "/api/v1/deliveries/{delivery_id}", operation_id = "get_delivery", tag = "deliveries",
    params(DeliveryPath),
    security(("bearer" = [])),
    responses((status = 200, description = "The delivery and what became of it", body = DeliveryBody), ReadOneErrors))]
pub(crate) async fn get(
    state: web::Data<AppState>,
    path: web::Path<DeliveryPath>,
) -> Result<HttpResponse, Problem> {
    let id =
        DeliveryId::parse(&path.delivery_id).map_err(|e| Problem::bad_request(e.to_string()))?;
    let record = state.deliveries.get(&id).await.map_err(|err| match err {
        GetDeliveryError::NotFound(_) => Problem::not_found(err.to_string()),
        GetDeliveryError::Failed(failure) => failure.into(),
    })?;
    Ok(HttpResponse::Ok().json(DeliveryBody::from(record)))
}
