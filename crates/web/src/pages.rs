//! The pages: overview, previews, one preview, deliveries. Each is a
//! [`View`]: a head (title, filters) and a live part the browser gets again
//! whenever it changes (`/live/…`, crate::live). An error shows a page that
//! says what failed, never a stack trace.

use std::collections::BTreeMap;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use ephemera_application::PageRequest;
use ephemera_application::ports::{DeliveryFilter, EnvironmentFilter};
use ephemera_domain::{
    DeliveryOutcome, Environment, EnvironmentId, EnvironmentStatus, RepositoryFullName,
    StatusChange,
};
use maud::{Markup, html};
use serde::Deserialize;

use crate::WebState;
use crate::layout::{answer, status};
use crate::live::{View, live, show};
use crate::people::Viewer;
use crate::time::{took, when};

type State = web::Data<WebState>;
type Made = Result<View, HttpResponse>;

/// A page that could not be made: what failed, and what to do.
pub(crate) fn trouble(status: StatusCode, title: &str, detail: &str) -> HttpResponse {
    answer(
        status,
        title,
        html! {
            h1 { (title) }
            p { (detail) }
            p { a href="/" { "Back to the overview" } }
        },
    )
}

fn bad(title: &str, detail: impl std::fmt::Display) -> HttpResponse {
    trouble(StatusCode::BAD_REQUEST, title, &detail.to_string())
}

fn unavailable(err: impl std::fmt::Display) -> HttpResponse {
    tracing::warn!(error = %err, "a dashboard page could not be read");
    trouble(
        StatusCode::SERVICE_UNAVAILABLE,
        "Not available right now",
        "The database did not answer. Reload in a moment; /health/ready says whether the service is ready.",
    )
}

fn first(limit: u32) -> PageRequest {
    PageRequest::parse(Some(limit), None).unwrap_or_default()
}

/// A preview's row: its PR, status, commit, author and when it changed.
fn row(env: &Environment, now: DateTime<Utc>) -> Markup {
    html! {
        tr {
            td {
                a href={ "/environments/" (env.id) } { (env.repository) "#" (env.pr_number) }
                br;
                span class="muted" { (env.pr_title) }
            }
            td { (status(env.status())) }
            td { code { (env.commit_sha.short()) } }
            td { (env.owner.as_ref().map(|o| o.login.as_str()).unwrap_or("")) }
            td { (when(env.updated_at, now)) }
        }
    }
}

fn table(envs: &[Environment], now: DateTime<Utc>, empty: &str) -> Markup {
    html! {
        @if envs.is_empty() {
            p class="empty" { (empty) }
        } @else {
            table {
                thead { tr { th { "Pull request" } th { "Status" } th { "Commit" } th { "Author" } th { "Changed" } } }
                tbody { @for env in envs { (row(env, now)) } }
            }
        }
    }
}

/// The viewer of `req`, or the page they get instead.
macro_rules! looking {
    ($state:expr, $session:expr, $req:expr) => {
        match $crate::people::viewer(&$state, &$session, &$req).await {
            Ok(viewer) => viewer,
            Err(page) => return page,
        }
    };
}
pub(crate) use looking;

/// A page and its live stream (`/live/<page>`), both made by
/// `$view(state, viewer, what the request says)`.
macro_rules! page_and_stream {
    ($page:ident, $stream:ident, $view:ident, $from:ty) => {
        pub async fn $page(
            state: State,
            session: Session,
            req: HttpRequest,
            from: $from,
        ) -> HttpResponse {
            let who = looking!(state, session, req);
            show(
                &req,
                &who,
                $view(state.clone(), who.clone(), from.into_inner()).await,
            )
        }

        pub async fn $stream(
            state: State,
            session: Session,
            req: HttpRequest,
            from: $from,
        ) -> HttpResponse {
            let who = looking!(state, session, req);
            let from = from.into_inner();
            live(move || $view(state.clone(), who.clone(), from.clone()))
        }
    };
}

/// The overview reads nothing from its address.
#[derive(Debug, Clone, Deserialize)]
pub struct Empty {}

page_and_stream!(overview, overview_live, overview_view, web::Query<Empty>);
page_and_stream!(
    environments,
    environments_live,
    environments_view,
    web::Query<ListQuery>
);
page_and_stream!(
    environment,
    environment_live,
    environment_view,
    web::Path<i64>
);
page_and_stream!(
    deliveries,
    deliveries_live,
    deliveries_view,
    web::Query<DeliveryQuery>
);

/// The deliveries `who` may see: those about repositories they reach.
fn deliveries_of(who: &Viewer) -> DeliveryFilter {
    DeliveryFilter {
        within: who
            .within()
            .map(|repos| repos.iter().map(ToString::to_string).collect()),
        ..DeliveryFilter::default()
    }
}

/// How many previews are in each status, of those `who` may see.
async fn counts(state: &State, who: &Viewer) -> Result<Vec<(String, i64)>, HttpResponse> {
    let Some(within) = who.within() else {
        return state
            .stats
            .environments_by_status()
            .await
            .map_err(unavailable);
    };
    let visible = state
        .queries
        .list_environments(
            &EnvironmentFilter {
                within: Some(within),
                ..EnvironmentFilter::default()
            },
            first(200),
        )
        .await
        .map_err(unavailable)?
        .items;
    let mut by_status: BTreeMap<String, i64> = BTreeMap::new();
    for env in &visible {
        *by_status
            .entry(env.status().as_str().to_owned())
            .or_default() += 1;
    }
    Ok(by_status.into_iter().collect())
}

async fn overview_view(state: State, who: Viewer, _: Empty) -> Made {
    let now = Utc::now();
    let counts = counts(&state, &who).await?;
    let list = |status| EnvironmentFilter {
        status: Some(status),
        within: who.within(),
        ..EnvironmentFilter::default()
    };
    let waiting = state
        .queries
        .list_environments(&list(EnvironmentStatus::Waiting), first(10))
        .await
        .map_err(unavailable)?
        .items;
    let failed = state
        .queries
        .list_environments(&list(EnvironmentStatus::Failed), first(5))
        .await
        .map_err(unavailable)?
        .items;
    // Webhook health: the last day's deliveries by outcome (of the newest
    // 500).
    let deliveries = state
        .deliveries
        .list(&deliveries_of(&who), first(500))
        .await
        .map_err(unavailable)?
        .items;
    let day_ago = now - chrono::Duration::hours(24);
    let mut by_outcome: BTreeMap<&str, usize> = DeliveryOutcome::ALL
        .iter()
        .map(|o| (o.as_str(), 0))
        .collect();
    for d in deliveries.iter().filter(|d| d.received_at >= day_ago) {
        *by_outcome.entry(d.outcome.as_str()).or_default() += 1;
    }
    let live: i64 = counts
        .iter()
        .filter(|(s, _)| s != "destroyed")
        .map(|(_, n)| n)
        .sum();
    Ok(View {
        title: "Overview".to_owned(),
        head: html! { h1 { "Overview" } },
        live: html! {
            h2 { "Previews by status" }
            @if counts.is_empty() {
                p class="empty" {
                    "No preview yet. Open a pull request in a repository where the GitHub App is installed, "
                    "or send an example webhook: " code { "ephemera webhook send --example pull_request.opened" }
                }
            } @else if live == 0 {
                p class="empty" { "No live preview right now: every preview so far has been removed." }
            }
            div class="cards" {
                @for (name, n) in &counts {
                    @if let Ok(s) = name.parse::<EnvironmentStatus>() {
                        a class="card" href={ "/environments?status=" (name) } { b { (n) } (status(s)) }
                    }
                }
            }
            h2 { "Waiting for a slot" }
            (table(&waiting, now, "Nobody is waiting: every preview that wants a slot has one."))
            h2 { "Recent failures" }
            (table(&failed, now, "No failed preview."))
            h2 { "Webhooks in the last 24 hours" }
            div class="cards" {
                @for (outcome, n) in &by_outcome {
                    a class="card" href={ "/deliveries?outcome=" (outcome) } { b { (n) } (outcome) }
                }
            }
        },
    })
}

#[derive(Debug, Clone, Deserialize)]
pub struct ListQuery {
    repository: Option<String>,
    status: Option<String>,
    author: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
}

/// A filter's value, unless blank.
fn given(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

async fn environments_view(state: State, who: Viewer, query: ListQuery) -> Made {
    let repository = given(&query.repository);
    let status_name = given(&query.status);
    let author = given(&query.author).map(|a| a.trim_start_matches('@').to_owned());
    let search = given(&query.q);
    let mut filter = EnvironmentFilter {
        within: who.within(),
        author: author.clone(),
        search: search.clone(),
        ..EnvironmentFilter::default()
    };
    if let Some(repo) = &repository {
        let parsed = RepositoryFullName::parse(repo).map_err(|err| {
            bad(
                "Not a repository",
                format!("`{repo}`: {err} (write it as owner/name)"),
            )
        })?;
        filter.repository = Some(parsed);
    }
    if let Some(name) = &status_name {
        filter.status = Some(
            name.parse::<EnvironmentStatus>()
                .map_err(|err| bad("Not a status", err))?,
        );
    }
    let page = PageRequest::parse(Some(50), query.cursor.as_deref())
        .map_err(|err| bad("Not a page", err))?;
    let found = state
        .queries
        .list_environments(&filter, page)
        .await
        .map_err(unavailable)?;
    let now = Utc::now();
    let next = found.next.map(|cursor| {
        let mut link = format!("/environments?cursor={}", cursor.encode());
        if let Some(repo) = &repository {
            link.push_str(&format!("&repository={repo}"));
        }
        if let Some(s) = &status_name {
            link.push_str(&format!("&status={s}"));
        }
        for (name, value) in [("author", &author), ("q", &search)] {
            if let Some(value) = value {
                link.push_str(&format!("&{name}={}", crate::people::escape(value)));
            }
        }
        link
    });
    Ok(View {
        title: "Previews".to_owned(),
        head: html! {
            h1 { "Previews" }
            form class="filters" method="get" action="/environments" {
                label { "Repository" input name="repository" placeholder="owner/name" value=[repository.as_deref()]; }
                label { "Status"
                    select name="status" {
                        option value="" { "any" }
                        @for s in EnvironmentStatus::ALL {
                            option value=(s.as_str()) selected[status_name.as_deref() == Some(s.as_str())] { (s.as_str()) }
                        }
                    }
                }
                label { "Author" input name="author" placeholder="login" value=[author.as_deref()]; }
                label { "Search" input type="search" name="q" placeholder="title, branch or repository" value=[search.as_deref()]; }
                button type="submit" { "Filter" }
            }
        },
        live: html! {
            (table(&found.items, now, "No preview matches. Clear the filters to see every preview."))
            @if let Some(next) = next { p { a href=(next) rel="next" { "Older previews →" } } }
        },
    })
}

/// The preview `id`, if `who` may see it.
pub(crate) async fn visible(
    state: &State,
    who: &Viewer,
    id: i64,
) -> Result<Environment, HttpResponse> {
    let missing = |id| {
        trouble(
            StatusCode::NOT_FOUND,
            "No such preview",
            &format!("There is no preview {id}. It may have been removed by retention."),
        )
    };
    let id = EnvironmentId::new(id).map_err(|_| missing(id))?;
    match state.queries.get_environment(id).await {
        Ok(env) if who.sees(&env.repository) => Ok(env),
        Ok(_) | Err(ephemera_application::queries::GetEnvironmentError::NotFound(_)) => {
            Err(missing(id.get()))
        }
        Err(err) => Err(unavailable(err)),
    }
}

async fn environment_view(state: State, who: Viewer, id: i64) -> Made {
    let env = visible(&state, &who, id).await?;
    let deployments = state
        .queries
        .list_deployments(env.id, first(20))
        .await
        .map_err(unavailable)?
        .items;
    let history = state
        .queries
        .status_history(env.id, 50)
        .await
        .map_err(unavailable)?;
    let now = Utc::now();
    let pr_url = format!(
        "https://github.com/{}/pull/{}",
        env.repository, env.pr_number
    );
    let commit_url = format!(
        "https://github.com/{}/commit/{}",
        env.repository, env.commit_sha
    );
    Ok(View {
        title: format!("{}#{}", env.repository, env.pr_number),
        head: html! {
            h1 { (env.repository) "#" (env.pr_number) }
            p { (env.pr_title) }
            // Shown by the script, which does the filtering.
            input #log-search type="search" aria-label="Search the log" placeholder="Search the log" hidden;
        },
        live: html! {
            p { "Status: " (status(env.status())) }
            (crate::actions::links(&env, &who))
            @if let Some(reason) = env.status_reason() { p class="muted" { (reason) } }
            @if let Some(error) = env.error_message() { p class="bad" { (error) } }
            table {
                tbody {
                    tr { th { "Pull request" } td { a href=(pr_url) { (pr_url) } } }
                    tr { th { "Commit" } td { a href=(commit_url) { code { (env.commit_sha.short()) } } " on " code { (env.branch_name) } } }
                    tr { th { "Preview" } td {
                        @if let Some(url) = env.environment_url() { a href=(url) { (url) } } @else { span class="muted" { "no URL yet" } }
                    } }
                    tr { th { "Namespace" } td { code { (env.namespace) } } }
                    tr { th { "Created" } td { (when(env.created_at, now)) } }
                    tr { th { "Changed" } td { (when(env.updated_at, now)) } }
                }
            }
            h2 { "Timeline" }
            (timeline(&history, &deployments, now))
            h2 { "Deployments" }
            @if deployments.is_empty() {
                p class="empty" { "No deployment yet." }
            } @else {
                table {
                    thead { tr { th { "#" } th { "Commit" } th { "Outcome" } th { "Took" } th { "Queued" } } }
                    tbody {
                        @for d in &deployments {
                            tr {
                                td { (d.id) }
                                td { code { (d.commit_sha.short()) } }
                                td { (d.status().as_str()) @if let Some(e) = d.error_message() { br; span class="muted" { (e.lines().next().unwrap_or_default()) } } }
                                td { @if let (Some(s), Some(e)) = (d.started_at(), d.completed_at()) { (took((e - s).num_milliseconds() as f64 / 1000.0)) } }
                                td { (when(d.created_at, now)) }
                            }
                        }
                    }
                }
                h2 { "Log of deployment " (deployments[0].id) }
                @if deployments[0].logs().trim().is_empty() {
                    p class="empty" { "Nothing logged yet." }
                } @else {
                    pre id="log" { (deployments[0].logs()) }
                }
            }
        },
    })
}

/// What happened to a preview, newest first: each status it entered and
/// why (created, waiting, ready, asleep, awake, failed, removed), and each
/// deployment queued and ended.
fn timeline(
    history: &[StatusChange],
    deployments: &[ephemera_domain::Deployment],
    now: DateTime<Utc>,
) -> Markup {
    enum Event<'a> {
        Status(&'a StatusChange),
        Deployment(String),
    }
    let mut events: Vec<(DateTime<Utc>, Event)> = history
        .iter()
        .map(|change| (change.at, Event::Status(change)))
        .collect();
    for d in deployments {
        let sha = d.commit_sha.short();
        let queued = format!("deployment {} of {sha} queued", d.id);
        events.push((d.created_at, Event::Deployment(queued)));
        if let Some(at) = d.completed_at() {
            let how = match d.error_message() {
                Some(e) => format!(
                    "{}: {}",
                    d.status().as_str(),
                    e.lines().next().unwrap_or_default()
                ),
                None => d.status().as_str().to_owned(),
            };
            let ended = format!("deployment {} ended {how}", d.id);
            events.push((at, Event::Deployment(ended)));
        }
    }
    // Newest first; at the same instant, the later step first.
    events.reverse();
    events.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    html! {
        ol class="timeline" {
            @for (at, event) in &events {
                li {
                    (when(*at, now)) " — "
                    @match event {
                        Event::Status(change) => {
                            "became " (status(change.status))
                            @if let Some(reason) = &change.reason {
                                ": " (reason.lines().next().unwrap_or_default())
                            }
                        }
                        Event::Deployment(what) => { (what) }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeliveryQuery {
    outcome: Option<String>,
    cursor: Option<String>,
}

async fn deliveries_view(state: State, who: Viewer, query: DeliveryQuery) -> Made {
    let outcome = given(&query.outcome);
    let mut filter = deliveries_of(&who);
    if let Some(name) = &outcome {
        filter.outcome = Some(
            name.parse::<DeliveryOutcome>()
                .map_err(|err| bad("Not an outcome", err))?,
        );
    }
    let page = PageRequest::parse(Some(50), query.cursor.as_deref())
        .map_err(|err| bad("Not a page", err))?;
    let found = state
        .deliveries
        .list(&filter, page)
        .await
        .map_err(unavailable)?;
    let now = Utc::now();
    let next = found.next.map(|cursor| match &outcome {
        Some(o) => format!("/deliveries?cursor={}&outcome={o}", cursor.encode()),
        None => format!("/deliveries?cursor={}", cursor.encode()),
    });
    Ok(View {
        title: "Deliveries".to_owned(),
        head: html! {
            h1 { "Webhook deliveries" }
            form class="filters" method="get" action="/deliveries" {
                label { "Outcome"
                    select name="outcome" {
                        option value="" { "any" }
                        @for o in DeliveryOutcome::ALL {
                            option value=(o.as_str()) selected[outcome.as_deref() == Some(o.as_str())] { (o.as_str()) }
                        }
                    }
                }
                button type="submit" { "Filter" }
            }
        },
        live: html! {
            @if found.items.is_empty() {
                p class="empty" { "No delivery yet. GitHub sends one when a pull request changes; check the App's webhook URL and secret if none arrives." }
            } @else {
                table {
                    thead { tr { th { "Event" } th { "Outcome" } th { "Reason" } th { "Repository" } th { "Received" } th { span class="muted" { "Action" } } } }
                    tbody {
                        @for d in &found.items {
                            tr {
                                td { (d.event) @if let Some(a) = &d.action { "." (a) } br; code class="muted" { (d.delivery_id) } }
                                td { (d.outcome.as_str()) }
                                td { (d.reason.as_deref().unwrap_or("")) }
                                td { (d.repository.as_deref().unwrap_or("")) }
                                td { (when(d.received_at, now)) }
                                td { @if crate::actions::may_redeliver(&state, &who, d) { a href={ "/deliveries/" (d.delivery_id) "/redeliver" } { "Redeliver" } } }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = next { p { a href=(next) rel="next" { "Older deliveries →" } } }
        },
    })
}
