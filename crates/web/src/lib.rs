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

mod actions;
mod layout;
mod live;
mod pages;
mod people;
mod repositories;
mod time;

use std::sync::Arc;

use actix_session::SessionMiddleware;
use actix_session::config::CookieContentSecurity;
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Key, SameSite};
use actix_web::{HttpResponse, web};
use ephemera_application::commands::EnvironmentCommands;
use ephemera_application::delivery_log::DeliveryQueries;
use ephemera_application::ports::StatsProbe;
use ephemera_application::queries::EnvironmentQueries;
use ephemera_application::repo_config::RepoConfigQueries;

pub use people::{ReachCache, SignInSettings};

/// What the pages read and do, behind the application's ports.
#[derive(Clone)]
pub struct WebState {
    pub queries: EnvironmentQueries,
    pub deliveries: DeliveryQueries,
    pub repo_configs: RepoConfigQueries,
    pub commands: EnvironmentCommands,
    pub stats: Arc<dyn StatsProbe>,
    /// Whether anyone who reaches the listener may read (the REST API's
    /// read rule); only without sign-in.
    pub open: bool,
    /// "Sign in with GitHub", when set up: then every page needs it.
    pub sign_in: Option<SignInSettings>,
    /// Signs and encrypts the session cookie (64 bytes or more).
    pub session_key: Arc<Vec<u8>>,
    /// Session cookies only over HTTPS (the public URL is https).
    pub secure_cookies: bool,
    /// Each signed-in person's repositories, kept briefly.
    pub reach: Arc<ReachCache>,
    /// Asking GitHub to send a delivery again (with the App set up).
    pub sync: Option<ephemera_application::sync::GitHubSync>,
}

impl std::fmt::Debug for WebState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebState")
            .field("open", &self.open)
            .finish_non_exhaustive()
    }
}

/// The session cookie: signed and encrypted, HttpOnly, SameSite=Lax (the
/// way back from GitHub's sign-in is a cross-site navigation), Secure
/// behind HTTPS.
fn sessions(state: &WebState) -> SessionMiddleware<CookieSessionStore> {
    SessionMiddleware::builder(CookieSessionStore::default(), Key::from(&state.session_key))
        .cookie_name("ephemera_session".to_owned())
        .cookie_content_security(CookieContentSecurity::Private)
        .cookie_http_only(true)
        .cookie_same_site(SameSite::Lax)
        .cookie_secure(state.secure_cookies)
        .build()
}

/// The dashboard's pages, for the API listener's app.
pub fn routes(cfg: &mut web::ServiceConfig, state: WebState) {
    let page = |cfg: &mut web::ServiceConfig, path: &str, route: actix_web::Route| {
        cfg.service(web::resource(path).wrap(sessions(&state)).route(route));
    };
    page(cfg, "/", web::get().to(pages::overview));
    page(cfg, "/environments", web::get().to(pages::environments));
    page(cfg, "/environments/{id}", web::get().to(pages::environment));
    cfg.service(
        web::resource("/environments/{id}/{action}")
            .wrap(sessions(&state))
            .route(web::get().to(actions::confirm))
            .route(web::post().to(actions::act)),
    );
    page(cfg, "/deliveries", web::get().to(pages::deliveries));
    cfg.service(
        web::resource("/deliveries/{guid}/redeliver")
            .wrap(sessions(&state))
            .route(web::get().to(actions::confirm_redelivery))
            .route(web::post().to(actions::redeliver)),
    );
    page(cfg, "/repositories", web::get().to(repositories::list));
    page(
        cfg,
        "/repositories/lookup",
        web::get().to(repositories::lookup),
    );
    page(
        cfg,
        "/repositories/{owner}/{repo}",
        web::get().to(repositories::config),
    );
    page(cfg, "/login", web::get().to(people::login));
    page(cfg, "/oauth/callback", web::get().to(people::callback));
    page(cfg, "/logout", web::post().to(people::logout));
    // Each page's live part, as server-sent events.
    page(cfg, "/live/", web::get().to(pages::overview_live));
    page(
        cfg,
        "/live/environments",
        web::get().to(pages::environments_live),
    );
    page(
        cfg,
        "/live/environments/{id}",
        web::get().to(pages::environment_live),
    );
    page(
        cfg,
        "/live/deliveries",
        web::get().to(pages::deliveries_live),
    );
    cfg.route("/assets/dashboard.js", web::get().to(live::script));
    cfg.app_data(web::Data::new(state));
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
