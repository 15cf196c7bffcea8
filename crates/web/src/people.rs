//! Who is looking: "Sign in with GitHub" (the App's OAuth user-to-server
//! flow), the session that remembers them (a signed and encrypted cookie),
//! and what they may see and do — the repositories their GitHub account
//! reaches through the App's installations, asked of GitHub and kept for a
//! minute.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use ephemera_application::ports::{GitHubSignIn, Reachable, SignedIn};
use ephemera_domain::RepositoryFullName;
use maud::html;
use serde::{Deserialize, Serialize};

use crate::layout::answer;
use crate::{WebState, closed};

/// How long a person's list of repositories is kept before GitHub is
/// asked again.
const REACH_KEPT: Duration = Duration::from_secs(60);

/// "Sign in with GitHub", when the App's OAuth credentials are set.
#[derive(Clone)]
pub struct SignInSettings {
    pub github: Arc<dyn GitHubSignIn>,
    /// Where this server is reached from browsers (`EPHEMERA_PUBLIC_URL`):
    /// GitHub sends people back to `<public_url>/oauth/callback`.
    pub public_url: String,
}

impl std::fmt::Debug for SignInSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInSettings")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// What one person reaches, and since when it is known.
type Reach = (Instant, Arc<Vec<Reachable>>);

/// Repositories each signed-in person reaches (by GitHub user id), kept
/// briefly.
#[derive(Debug, Default)]
pub struct ReachCache(Mutex<HashMap<i64, Reach>>);

/// The person in the session, as the cookie keeps them.
#[derive(Clone, Serialize, Deserialize)]
struct Stored {
    login: String,
    id: i64,
    token: String,
}

/// Who is looking at a page.
#[derive(Debug, Clone)]
pub enum Viewer {
    /// Sign-in is not set up and reads are open here: everything is
    /// visible, nothing may be changed.
    Anyone,
    Person {
        login: String,
        reach: Arc<Vec<Reachable>>,
        csrf: String,
    },
}

impl Viewer {
    /// The repositories this viewer may see; `None`: every one.
    pub fn within(&self) -> Option<Vec<RepositoryFullName>> {
        match self {
            Self::Anyone => None,
            Self::Person { reach, .. } => {
                Some(reach.iter().map(|r| r.repository.clone()).collect())
            }
        }
    }

    pub fn sees(&self, repository: &RepositoryFullName) -> bool {
        match self {
            Self::Anyone => true,
            Self::Person { reach, .. } => {
                reach.iter().any(|r| r.repository.key() == repository.key())
            }
        }
    }

    /// Whether this viewer may act on `repository`'s previews (write
    /// permission on it).
    pub fn may_change(&self, repository: &RepositoryFullName) -> bool {
        match self {
            Self::Anyone => false,
            Self::Person { reach, .. } => reach
                .iter()
                .any(|r| r.can_write && r.repository.key() == repository.key()),
        }
    }
}

/// A fresh random token (state, CSRF).
fn token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// The viewer of `req`, or the page they get instead: the closed page,
/// or a redirect to sign in.
pub async fn viewer(
    state: &WebState,
    session: &Session,
    req: &HttpRequest,
) -> Result<Viewer, HttpResponse> {
    let Some(sign_in) = &state.sign_in else {
        return if state.open {
            Ok(Viewer::Anyone)
        } else {
            Err(closed())
        };
    };
    let stored = session.get::<Stored>("who").ok().flatten();
    let csrf = session.get::<String>("csrf").ok().flatten();
    let (Some(stored), Some(csrf)) = (stored, csrf) else {
        let mut next = req.path().to_owned();
        if !req.query_string().is_empty() {
            next = format!("{next}?{}", req.query_string());
        }
        // A live stream cannot follow a redirect usefully: it is refused.
        if next.starts_with("/live/") {
            return Err(HttpResponse::Unauthorized().finish());
        }
        return Err(HttpResponse::Found()
            .insert_header(("location", format!("/login?next={}", escape(&next))))
            .finish());
    };
    let reach = reach(state, sign_in, &stored).await.map_err(|why| {
        tracing::warn!(login = %stored.login, error = %why, "could not list a person's repositories");
        if why.contains("expired or was revoked") {
            session.purge();
            return HttpResponse::Found().insert_header(("location", "/login")).finish();
        }
        answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "GitHub did not answer",
            html! { h1 { "GitHub did not answer" } p { "Your repositories could not be listed: " (why) ". Reload in a moment." } },
        )
    })?;
    Ok(Viewer::Person {
        login: stored.login,
        reach,
        csrf,
    })
}

async fn reach(
    state: &WebState,
    sign_in: &SignInSettings,
    who: &Stored,
) -> Result<Arc<Vec<Reachable>>, String> {
    if let Ok(kept) = state.reach.0.lock()
        && let Some((at, reach)) = kept.get(&who.id)
        && at.elapsed() < REACH_KEPT
    {
        return Ok(reach.clone());
    }
    let signed = SignedIn {
        login: who.login.clone(),
        github_id: who.id,
        token: who.token.clone(),
    };
    let reach = Arc::new(
        sign_in
            .github
            .repositories(&signed)
            .await
            .map_err(|e| e.to_string())?,
    );
    if let Ok(mut kept) = state.reach.0.lock() {
        kept.retain(|_, (at, _)| at.elapsed() < REACH_KEPT);
        kept.insert(who.id, (Instant::now(), reach.clone()));
    }
    Ok(reach)
}

/// Query-string escaping of one value (`/` kept: the values are paths or
/// plain text).
pub(crate) fn escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Where to go after signing in: a path of this site, nothing else.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/".to_owned(),
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// Sends the browser to GitHub to sign in.
pub async fn login(
    state: web::Data<WebState>,
    session: Session,
    query: web::Query<LoginQuery>,
) -> HttpResponse {
    let Some(sign_in) = &state.sign_in else {
        return answer(
            StatusCode::NOT_FOUND,
            "Sign-in is not set up",
            html! {
                h1 { "Sign-in is not set up" }
                p { "Set " code { "EPHEMERA_GITHUB_OAUTH_CLIENT_ID" } " and " code { "EPHEMERA_GITHUB_OAUTH_CLIENT_SECRET" }
                    " (the GitHub App's own OAuth credentials) to sign in with GitHub. See docs/dashboard.md." }
            },
        );
    };
    let state_token = token();
    let next = safe_next(query.next.as_deref());
    if session.insert("oauth_state", &state_token).is_err()
        || session.insert("next", &next).is_err()
    {
        return answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Could not start signing in",
            html! { h1 { "Could not start signing in" } },
        );
    }
    let back = format!(
        "{}/oauth/callback",
        sign_in.public_url.trim_end_matches('/')
    );
    HttpResponse::Found()
        .insert_header((
            "location",
            sign_in.github.authorize_url(&state_token, &back),
        ))
        .finish()
}

#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// GitHub sends the browser back here with a code: the person is signed
/// in (a new session, a new CSRF token).
pub async fn callback(
    state: web::Data<WebState>,
    session: Session,
    query: web::Query<Callback>,
) -> HttpResponse {
    let refused = |status, detail: String| {
        answer(
            status,
            "Signing in did not work",
            html! { h1 { "Signing in did not work" } p { (detail) } p { a href="/login" { "Try again" } } },
        )
    };
    let Some(sign_in) = &state.sign_in else {
        return refused(
            StatusCode::NOT_FOUND,
            "Sign-in is not set up on this server.".to_owned(),
        );
    };
    if let Some(error) = &query.error {
        return refused(StatusCode::FORBIDDEN, format!("GitHub said: {error}."));
    }
    let expected = session.get::<String>("oauth_state").ok().flatten();
    let (Some(code), Some(given), Some(expected)) = (&query.code, &query.state, expected) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "The answer from GitHub was incomplete, or this browser did not start the sign-in."
                .to_owned(),
        );
    };
    if *given != expected {
        return refused(
            StatusCode::BAD_REQUEST,
            "The sign-in's state does not match this browser's: start again.".to_owned(),
        );
    }
    let back = format!(
        "{}/oauth/callback",
        sign_in.public_url.trim_end_matches('/')
    );
    let who = match sign_in.github.sign_in(code, &back).await {
        Ok(who) => who,
        Err(err) => return refused(StatusCode::BAD_GATEWAY, err.to_string()),
    };
    let next = safe_next(session.get::<String>("next").ok().flatten().as_deref());
    // A new session: what was there before signing in is not trusted.
    session.clear();
    session.renew();
    let stored = Stored {
        login: who.login.clone(),
        id: who.github_id,
        token: who.token,
    };
    if session.insert("who", &stored).is_err() || session.insert("csrf", token()).is_err() {
        return refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The session could not be written.".to_owned(),
        );
    }
    tracing::info!(login = %who.login, "signed in to the dashboard");
    HttpResponse::SeeOther()
        .insert_header(("location", next))
        .finish()
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

/// Whether `given` is the session's CSRF token.
pub fn csrf_ok(session: &Session, given: &str) -> bool {
    session
        .get::<String>("csrf")
        .ok()
        .flatten()
        .is_some_and(|expected| !expected.is_empty() && expected == given)
}

/// Signs out (a POST with the CSRF token): the session is gone.
pub async fn logout(session: Session, form: web::Form<CsrfForm>) -> HttpResponse {
    if !csrf_ok(&session, &form.csrf) {
        return answer(
            StatusCode::FORBIDDEN,
            "Not signed out",
            html! { h1 { "Not signed out" } p { "The form was stale; reload the page and try again." } },
        );
    }
    session.purge();
    HttpResponse::SeeOther()
        .insert_header(("location", "/"))
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_path_of_this_site_is_a_place_to_go_back_to() {
        assert_eq!(
            safe_next(Some("/environments?status=ready")),
            "/environments?status=ready"
        );
        for hostile in [
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "evil",
        ] {
            assert_eq!(safe_next(Some(hostile)), "/", "{hostile}");
        }
        assert_eq!(safe_next(None), "/");
    }
}
