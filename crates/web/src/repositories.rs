//! Repositories: those with previews, and each one's effective
//! configuration — its `.github/ephemera.yml` within the operator's bounds,
//! over the operator's defaults, and where each value came from.

use std::collections::BTreeSet;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use ephemera_application::PageRequest;
use ephemera_application::ports::EnvironmentFilter;
use ephemera_application::repo_config::{EffectiveConfigError, FileOrigin};
use ephemera_domain::{ConfigKey, RepoRules, RepositoryFullName, format_duration};
use maud::html;
use serde::Deserialize;

use crate::WebState;
use crate::layout::answer;
use crate::pages::looking;
use crate::people::Viewer;

/// How many previews the list of repositories is gathered from.
const SCANNED: u32 = 500;

pub async fn list(state: web::Data<WebState>, session: Session, req: HttpRequest) -> HttpResponse {
    let who = looking!(state, session, req);
    if let Viewer::Person { reach, .. } = &who {
        let repositories: BTreeSet<String> =
            reach.iter().map(|r| r.repository.to_string()).collect();
        return repositories_page(&repositories);
    }
    let page = PageRequest::parse(Some(SCANNED), None).unwrap_or_default();
    let envs = match state
        .queries
        .list_environments(&EnvironmentFilter::default(), page)
        .await
    {
        Ok(found) => found.items,
        Err(err) => {
            tracing::warn!(error = %err, "the repositories page could not be read");
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not available right now",
                html! { h1 { "Not available right now" } p { "The database did not answer. Reload in a moment." } },
            );
        }
    };
    let repositories: BTreeSet<String> = envs.iter().map(|e| e.repository.to_string()).collect();
    repositories_page(&repositories)
}

fn repositories_page(repositories: &BTreeSet<String>) -> HttpResponse {
    answer(
        StatusCode::OK,
        "Repositories",
        html! {
            h1 { "Repositories" }
            form class="filters" method="get" action="/repositories/lookup" {
                label { "Repository" input name="repository" placeholder="owner/name" required; }
                button type="submit" { "Show its configuration" }
            }
            @if repositories.is_empty() {
                p class="empty" { "No repository has had a preview yet. Look one up by name above to see the configuration its previews would get." }
            } @else {
                ul {
                    @for repo in repositories {
                        li { a href={ "/repositories/" (repo) } { (repo) } }
                    }
                }
            }
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct Lookup {
    repository: String,
}

/// The look-up form's answer: the repository's own page.
pub async fn lookup(query: web::Query<Lookup>) -> HttpResponse {
    match RepositoryFullName::parse(query.repository.trim()) {
        Ok(repo) => HttpResponse::SeeOther()
            .insert_header(("location", format!("/repositories/{repo}")))
            .finish(),
        Err(err) => answer(
            StatusCode::BAD_REQUEST,
            "Not a repository",
            html! { h1 { "Not a repository" } p { "`" (query.repository) "`: " (err) " (write it as owner/name)" } p { a href="/repositories" { "Back" } } },
        ),
    }
}

#[derive(Debug, Deserialize)]
pub struct RefQuery {
    #[serde(rename = "ref")]
    git_ref: Option<String>,
}

/// What `rules` says for `key`, as the file would write it.
fn value_of(rules: &RepoRules, key: ConfigKey) -> String {
    let list = |v: &[String]| {
        if v.is_empty() {
            "(any)".to_owned()
        } else {
            v.join(", ")
        }
    };
    let none = |v: Option<String>| v.unwrap_or_else(|| "(none)".to_owned());
    match key {
        ConfigKey::Mode => rules.mode.as_str().to_owned(),
        ConfigKey::Branches => list(&rules.branches),
        ConfigKey::PathsInclude => list(&rules.paths_include),
        ConfigKey::PathsExclude => {
            none((!rules.paths_exclude.is_empty()).then(|| rules.paths_exclude.join(", ")))
        }
        ConfigKey::SkipAuthors => {
            none((!rules.skip_authors.is_empty()).then(|| rules.skip_authors.join(", ")))
        }
        ConfigKey::SkipWhenTitleContains => none(
            (!rules.skip_when_title_contains.is_empty())
                .then(|| rules.skip_when_title_contains.join(", ")),
        ),
        ConfigKey::Ttl => none(rules.ttl.map(format_duration)),
        ConfigKey::SleepAfter => none(rules.sleep_after.map(format_duration)),
        ConfigKey::MaxActive => none(rules.max_active.map(|n| n.to_string())),
        ConfigKey::Env => none((!rules.env.is_empty()).then(|| {
            rules
                .env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        })),
    }
}

pub async fn config(
    state: web::Data<WebState>,
    session: Session,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    query: web::Query<RefQuery>,
) -> HttpResponse {
    let who = looking!(state, session, req);
    let (owner, name) = path.into_inner();
    let problem = |status, title: &str, detail: String| {
        answer(
            status,
            title,
            html! { h1 { (title) } p { (detail) } p { a href="/repositories" { "Back to the repositories" } } },
        )
    };
    let repository = match RepositoryFullName::parse(&format!("{owner}/{name}")) {
        Ok(repo) => repo,
        Err(err) => return problem(StatusCode::BAD_REQUEST, "Not a repository", err.to_string()),
    };
    if !who.sees(&repository) {
        return problem(
            StatusCode::NOT_FOUND,
            "Not installed",
            format!(
                "No active installation of the GitHub App lists {repository}. Install the App on it, or check the name."
            ),
        );
    }
    let git_ref = query
        .git_ref
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let found = match state.repo_configs.effective(&repository, git_ref).await {
        Ok(found) => found,
        Err(EffectiveConfigError::NotFound(_)) => {
            return problem(
                StatusCode::NOT_FOUND,
                "Not installed",
                format!(
                    "No active installation of the GitHub App lists {repository}. Install the App on it, or check the name."
                ),
            );
        }
        Err(err @ EffectiveConfigError::GitHubUnavailable(_)) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "GitHub did not answer",
                format!("{err}. Reload in a moment."),
            );
        }
        Err(err) => {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not available right now",
                err.to_string(),
            );
        }
    };
    let at = git_ref.unwrap_or("the default branch");
    answer(
        StatusCode::OK,
        &format!("{repository} configuration"),
        html! {
            h1 { (repository) }
            p {
                "The rules a preview of this repository gets at " code { (at) } ": "
                @match &found.origin {
                    FileOrigin::File { git_ref, blob_sha } => {
                        code { ".github/ephemera.yml" } " at " code { (git_ref) } " (blob " code { (blob_sha.get(..7).unwrap_or(blob_sha)) } "), within this server's bounds."
                    }
                    FileOrigin::Defaults(why) => { "this server's defaults (" (why) ")." }
                }
            }
            form class="filters" method="get" {
                label { "Branch, tag or commit" input name="ref" placeholder="default branch" value=[git_ref]; }
                button type="submit" { "Show" }
            }
            @if let Some(invalid) = &found.invalid {
                p class="bad" { "The file is invalid, so previews get nothing new until it is fixed: " (invalid) }
            }
            table {
                thead { tr { th { "Key" } th { "Value" } th { "From" } } }
                tbody {
                    @for key in ConfigKey::ALL {
                        tr {
                            td { code { (key.as_str()) } }
                            td { (value_of(&found.resolved.rules, key)) }
                            td { (found.resolved.sources.get(&key).map(|s| s.as_str()).unwrap_or("default")) }
                        }
                    }
                }
            }
            @if !found.resolved.refused.is_empty() {
                h2 { "Refused by this server's bounds" }
                ul { @for note in &found.resolved.refused { li { (note) } } }
            }
            p class="muted" { "The same, as JSON: " code { "GET /api/v1/repositories/" (repository) "/config" } }
        },
    )
}
