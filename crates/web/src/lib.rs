//! The dashboard: server-rendered pages for people at `/`, beside the REST
//! API — an overview, the previews, one preview with its deployments and
//! log, and the webhook delivery log.
//!
//! An inbound adapter like `http`: it reads through the application's
//! queries and never imports another adapter. The server mounts its routes
//! on the API listener (`routes`).
//!
//! Who may look: without "Sign in with GitHub" (not built yet, #16), the
//! dashboard follows the REST API's read rule — open when reads are
//! anonymous (no token on a loopback listener, or
//! `EPHEMERA_ANONYMOUS_READS=true`), otherwise a page that says what to
//! configure.

mod layout;
mod live;
mod pages;
mod repositories;
mod time;

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use ephemera_application::delivery_log::DeliveryQueries;
use ephemera_application::ports::StatsProbe;
use ephemera_application::queries::EnvironmentQueries;
use ephemera_application::repo_config::RepoConfigQueries;

/// What the pages read, behind the application's ports.
#[derive(Clone)]
pub struct WebState {
    pub queries: EnvironmentQueries,
    pub deliveries: DeliveryQueries,
    pub repo_configs: RepoConfigQueries,
    pub stats: Arc<dyn StatsProbe>,
    /// Whether anyone who reaches the listener may read (the REST API's
    /// read rule).
    pub open: bool,
}

impl std::fmt::Debug for WebState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebState")
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

/// The dashboard's pages, for the API listener's app.
pub fn routes(cfg: &mut web::ServiceConfig, state: WebState) {
    cfg.app_data(web::Data::new(state))
        .route("/", web::get().to(pages::overview))
        .route("/environments", web::get().to(pages::environments))
        .route("/environments/{id}", web::get().to(pages::environment))
        .route("/deliveries", web::get().to(pages::deliveries))
        .route("/repositories", web::get().to(repositories::list))
        .route("/repositories/lookup", web::get().to(repositories::lookup))
        .route(
            "/repositories/{owner}/{repo}",
            web::get().to(repositories::config),
        )
        // Each page's live part, as server-sent events.
        .route("/live/", web::get().to(pages::overview_live))
        .route(
            "/live/environments",
            web::get().to(pages::environments_live),
        )
        .route(
            "/live/environments/{id}",
            web::get().to(pages::environment_live),
        )
        .route("/live/deliveries", web::get().to(pages::deliveries_live))
        .route("/assets/dashboard.js", web::get().to(live::script));
}

/// The page a person gets where the dashboard may not be read.
fn closed() -> HttpResponse {
    layout::answer(
        actix_web::http::StatusCode::FORBIDDEN,
        "Sign-in needed",
        maud::html! {
            h1 { "This dashboard is not open here" }
            p {
                "ephemera serves its dashboard without sign-in only where its REST API "
                "may be read without a token: on a loopback address with no "
                code { "EPHEMERA_API_TOKEN" } ", or with "
                code { "EPHEMERA_ANONYMOUS_READS=true" } "."
            }
            p {
                "To open it to everyone who reaches this server, set "
                code { "EPHEMERA_ANONYMOUS_READS=true" }
                ". The REST API under " code { "/api/v1" }
                " still answers with " code { "Authorization: Bearer <EPHEMERA_API_TOKEN>" } "."
            }
        },
    )
}
