//! Acting on a preview from the dashboard: redeploy, sleep, wake, destroy.
//! A link leads to a confirmation page; its form (POST, with the session's
//! CSRF token) acts. Only a signed-in person with write permission on the
//! preview's repository may, through the same commands as the REST API.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use ephemera_domain::{Environment, EnvironmentStatus};
use maud::{Markup, html};

use crate::WebState;
use crate::layout::answer;
use crate::pages::{looking, trouble, visible};
use crate::people::{CsrfForm, Viewer, csrf_ok};

/// The actions, as their address names them: (name, button, what it does).
const ACTIONS: [(&str, &str, &str); 4] = [
    ("redeploy", "Redeploy", "deploys the PR's head commit again"),
    (
        "sleep",
        "Put to sleep",
        "stops what runs; its data and URL stay",
    ),
    ("wake", "Wake", "starts the sleeping preview again"),
    (
        "destroy",
        "Destroy",
        "removes the preview; a push or reopening the PR brings it back",
    ),
];

/// Whether `action` applies to a preview in `status`.
fn applies(action: &str, status: EnvironmentStatus) -> bool {
    use EnvironmentStatus::*;
    match action {
        "redeploy" => matches!(status, Ready | Failed | Sleeping),
        "sleep" => status == Ready,
        "wake" => status == Sleeping,
        "destroy" => !matches!(status, Destroying | Destroyed),
        _ => false,
    }
}

/// The action links a preview's page shows `who` (none without write
/// permission; a hint to sign in for someone who is not).
pub fn links(env: &Environment, who: &Viewer) -> Markup {
    html! {
        @if who.may_change(&env.repository) {
            p class="actions" {
                @for (name, label, _) in ACTIONS {
                    @if applies(name, env.status()) {
                        a href={ "/environments/" (env.id) "/" (name) } { (label) }
                    }
                }
            }
        } @else if let Viewer::Person { .. } = who {
            p class="muted" { "You can read this preview; acting on it needs write permission on " (env.repository) "." }
        }
    }
}

/// The action named in the path, its preview, and whether `who` may.
async fn checked(
    state: &web::Data<WebState>,
    who: &Viewer,
    path: (i64, String),
) -> Result<(Environment, &'static str, &'static str, &'static str), HttpResponse> {
    let (id, action) = path;
    let Some((name, label, what)) = ACTIONS.iter().copied().find(|(n, _, _)| *n == action) else {
        return Err(trouble(
            StatusCode::NOT_FOUND,
            "No such action",
            &format!("`{action}` is not an action: redeploy, sleep, wake or destroy."),
        ));
    };
    let env = visible(state, who, id).await?;
    if !who.may_change(&env.repository) {
        let why = match who {
            Viewer::Anyone => {
                "Sign in with GitHub to act on previews (see docs/dashboard.md).".to_owned()
            }
            Viewer::Person { login, .. } => format!(
                "@{login} has no write permission on {}: acting on its previews needs it.",
                env.repository
            ),
        };
        return Err(trouble(StatusCode::FORBIDDEN, "Not allowed", &why));
    }
    Ok((env, name, label, what))
}

/// The confirmation page of an action.
pub async fn confirm(
    state: web::Data<WebState>,
    session: Session,
    req: HttpRequest,
    path: web::Path<(i64, String)>,
) -> HttpResponse {
    let who = looking!(state, session, req);
    let (env, name, label, what) = match checked(&state, &who, path.into_inner()).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let Viewer::Person { csrf, .. } = &who else {
        return trouble(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Sign in with GitHub to act on previews.",
        );
    };
    let back = format!("/environments/{}", env.id);
    answer(
        StatusCode::OK,
        &format!("{label} {}#{}", env.repository, env.pr_number),
        html! {
            h1 { (label) " the preview of " (env.repository) "#" (env.pr_number) "?" }
            p { "This " (what) "." }
            form method="post" action={ (back) "/" (name) } {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" autofocus { (label) }
                " "
                a href=(back) { "Cancel" }
            }
        },
    )
}

/// Carries out a confirmed action; back to the preview's page.
pub async fn act(
    state: web::Data<WebState>,
    session: Session,
    req: HttpRequest,
    path: web::Path<(i64, String)>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let who = looking!(state, session, req);
    if !csrf_ok(&session, &form.csrf) {
        return trouble(
            StatusCode::FORBIDDEN,
            "Not done",
            "The form was stale or came from elsewhere; go back, reload and try again.",
        );
    }
    let (env, name, _, _) = match checked(&state, &who, path.into_inner()).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let Viewer::Person { login, .. } = &who else {
        return trouble(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Sign in with GitHub to act on previews.",
        );
    };
    let why = format!("@{login} via the dashboard: {name}");
    let done = match name {
        "redeploy" => state.commands.redeploy(env.id).await.map(|_| ()),
        "sleep" => state.commands.sleep(env.id, &why).await.map(|_| ()),
        "wake" => state.commands.wake(env.id, &why).await.map(|_| ()),
        _ => state
            .commands
            .destroy_because(env.id, &why)
            .await
            .map(|_| ()),
    };
    match done {
        Ok(()) => {
            tracing::info!(login = %login, environment = %env.id, action = name, "acted from the dashboard");
            HttpResponse::SeeOther()
                .insert_header(("location", format!("/environments/{}", env.id)))
                .finish()
        }
        Err(ephemera_application::commands::CommandError::Conflict(why)) => {
            trouble(StatusCode::CONFLICT, "Not now", &why)
        }
        Err(err) => {
            tracing::warn!(error = %err, "a dashboard action failed");
            trouble(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not done",
                "The action could not be carried out now; try again in a moment.",
            )
        }
    }
}

/// Whether `who` may ask for delivery `d` again: it failed, it is about a
/// repository they may change, and the App is set up to ask GitHub.
pub fn may_redeliver(state: &WebState, who: &Viewer, d: &ephemera_domain::DeliveryRecord) -> bool {
    state.sync.is_some()
        && d.outcome == ephemera_domain::DeliveryOutcome::Failed
        && d.repository
            .as_deref()
            .and_then(|r| ephemera_domain::RepositoryFullName::parse(r).ok())
            .is_some_and(|r| who.may_change(&r))
}

/// The delivery `guid`, if `who` may ask for it again.
async fn redeliverable(
    state: &web::Data<WebState>,
    who: &Viewer,
    guid: &str,
) -> Result<ephemera_domain::DeliveryRecord, HttpResponse> {
    let missing = || {
        trouble(
            StatusCode::NOT_FOUND,
            "No such delivery",
            &format!("No delivery `{guid}` in the log."),
        )
    };
    let id = ephemera_domain::DeliveryId::parse(guid).map_err(|_| missing())?;
    let record = state.deliveries.get(&id).await.map_err(|_| missing())?;
    let visible = record
        .repository
        .as_deref()
        .and_then(|r| ephemera_domain::RepositoryFullName::parse(r).ok())
        .is_some_and(|r| who.sees(&r));
    if !visible {
        return Err(missing());
    }
    if !may_redeliver(state, who, &record) {
        return Err(trouble(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Only a failed delivery can be asked for again, by someone signed in with write permission on its repository, with the GitHub App set up.",
        ));
    }
    Ok(record)
}

/// The confirmation page of asking GitHub for a delivery again.
pub async fn confirm_redelivery(
    state: web::Data<WebState>,
    session: Session,
    req: HttpRequest,
    guid: web::Path<String>,
) -> HttpResponse {
    let who = looking!(state, session, req);
    let record = match redeliverable(&state, &who, &guid).await {
        Ok(record) => record,
        Err(page) => return page,
    };
    let Viewer::Person { csrf, .. } = &who else {
        return trouble(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Sign in with GitHub to act.",
        );
    };
    answer(
        StatusCode::OK,
        "Redeliver",
        html! {
            h1 { "Ask GitHub to send " (record.event) " " code { (record.delivery_id) } " again?" }
            p { "It failed: " (record.reason.as_deref().unwrap_or("no reason recorded")) ". GitHub keeps failed deliveries for three days." }
            form method="post" action={ "/deliveries/" (record.delivery_id) "/redeliver" } {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" autofocus { "Redeliver" }
                " "
                a href="/deliveries" { "Cancel" }
            }
        },
    )
}

/// Asks GitHub to send the delivery again; back to the delivery log.
pub async fn redeliver(
    state: web::Data<WebState>,
    session: Session,
    req: HttpRequest,
    guid: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let who = looking!(state, session, req);
    if !csrf_ok(&session, &form.csrf) {
        return trouble(
            StatusCode::FORBIDDEN,
            "Not done",
            "The form was stale or came from elsewhere; go back, reload and try again.",
        );
    }
    let record = match redeliverable(&state, &who, &guid).await {
        Ok(record) => record,
        Err(page) => return page,
    };
    let (Some(sync), Viewer::Person { login, .. }) = (&state.sync, &who) else {
        return trouble(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "Sign in with GitHub to act.",
        );
    };
    match sync
        .redeliver_one(&record.delivery_id, &format!("@{login} via the dashboard"))
        .await
    {
        Ok(ephemera_application::sync::Redelivered::Asked) => HttpResponse::SeeOther()
            .insert_header(("location", "/deliveries"))
            .finish(),
        Ok(ephemera_application::sync::Redelivered::NotListed) => trouble(
            StatusCode::CONFLICT,
            "GitHub does not list it",
            "GitHub lists no failed delivery with this id in the last three days: it was answered since, or it is older.",
        ),
        Err(err) => {
            tracing::warn!(error = %err, "a redelivery from the dashboard failed");
            trouble(
                StatusCode::BAD_GATEWAY,
                "GitHub did not answer",
                "GitHub could not be asked now; try again in a moment.",
            )
        }
    }
}
