//! Repositories' `.github/ephemera.yml` over REST: its JSON Schema (public:
//! it holds no secrets, and editors fetch it without a token) and a
//! repository's effective configuration, with where each value came from.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use ephemera_application::repo_config::{
    CONFIG_PATH, EffectiveConfig, EffectiveConfigError, FileOrigin,
};
use ephemera_domain::{ConfigKey, PreviewMode, RepositoryFullName, ValueSource, format_duration};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ArrayBuilder, Object};
use utoipa::{IntoParams, ToSchema};

use crate::responses::ConfigReadErrors;
use crate::{AppState, Problem, params};

/// The schema of `.github/ephemera.yml`, compiled in: the server reads no
/// file at run time.
pub(crate) const CONFIG_SCHEMA: &str = include_str!("../../../schemas/ephemera-config.schema.json");

/// `GET /api/v1/config-schema`.
#[utoipa::path(get, path = "/api/v1/config-schema", operation_id = "config_schema", tag = "repositories",
    responses((status = 200, description = "The JSON Schema (draft 2020-12) of `.github/ephemera.yml`; readable without a token", content_type = "application/schema+json", body = Object)))]
pub(crate) async fn schema() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/schema+json")
        .insert_header(("Cache-Control", "public, max-age=3600"))
        .body(CONFIG_SCHEMA)
}

/// The `{owner}/{repo}` of a repository path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct RepositoryPath {
    /// The repository's owner
    #[param(schema_with = params::owner)]
    owner: String,
    /// The repository's name
    #[param(schema_with = params::repo)]
    repo: String,
}

/// `GET /api/v1/repositories/{owner}/{repo}/config` query string.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConfigQuery {
    /// A branch, tag or commit SHA; the default branch when absent
    #[serde(rename = "ref")]
    #[param(rename = "ref", schema_with = params::git_ref)]
    git_ref: Option<String>,
}

/// Where a repository's rules came from.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SourceBody {
    #[schema(schema_with = source_kind)]
    kind: &'static str,
    /// Where the file lives in the repository
    #[schema(example = ".github/ephemera.yml")]
    file: &'static str,
    /// The ref read; null: the repository's default branch
    #[serde(rename = "ref")]
    git_ref: Option<String>,
    /// The file's Git blob SHA, when it was read and applies
    blob_sha: Option<String>,
    /// Why the defaults apply, when they do
    reason: Option<String>,
}

fn source_kind() -> Object {
    params::one_of(
        ["file", "defaults"],
        "`file`: the repository's file applies; `defaults`: the operator's defaults apply (no file, files not read, or the file is invalid)",
    )
    .build()
}

fn value_source() -> Object {
    params::one_of(
        ValueSource::ALL.map(ValueSource::as_str),
        "`default`: the operator's default; `file`: the repository's file; `bound`: the file asked for more than the operator allows, the bound applies",
    )
    .build()
}

fn preview_mode() -> Object {
    params::one_of(
        PreviewMode::ALL.map(PreviewMode::as_str),
        "`auto`, `manual` or `off`",
    )
    .build()
}

fn config_keys() -> utoipa::openapi::schema::Array {
    ArrayBuilder::new()
        .items(params::one_of(
            ConfigKey::ALL.map(ConfigKey::as_str),
            "A configuration key",
        ))
        .description(Some("The keys a repository's file may set"))
        .build()
}

/// Declares one effective value's body: the value and where it came from.
macro_rules! valued {
    ($name:ident, $ty:ty, $doc:literal $(, $attr:meta)?) => {
        #[doc = $doc]
        #[derive(Debug, Serialize, ToSchema)]
        pub(crate) struct $name {
            $(#[$attr])?
            value: $ty,
            #[schema(schema_with = value_source)]
            source: &'static str,
        }
    };
}

valued!(
    ModeValue,
    &'static str,
    "`previews.mode`",
    schema(schema_with = preview_mode)
);
valued!(
    GlobsValue,
    Vec<String>,
    "A list of globs or phrases; empty: no such rule"
);
valued!(
    DurationValue,
    Option<String>,
    "A duration such as `3d`; null: none"
);
valued!(
    CountValue,
    Option<u32>,
    "A number of previews; null: no cap",
    schema(minimum = 1)
);
valued!(EnvValues, BTreeMap<String, String>, "The variables handed to the provisioner");

/// Every key's effective value.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ValuesBody {
    #[serde(rename = "previews.mode")]
    mode: ModeValue,
    #[serde(rename = "previews.branches")]
    branches: GlobsValue,
    #[serde(rename = "previews.paths.include")]
    paths_include: GlobsValue,
    #[serde(rename = "previews.paths.exclude")]
    paths_exclude: GlobsValue,
    #[serde(rename = "previews.skip_authors")]
    skip_authors: GlobsValue,
    #[serde(rename = "previews.skip_when_title_contains")]
    skip_when_title_contains: GlobsValue,
    #[serde(rename = "previews.ttl")]
    ttl: DurationValue,
    #[serde(rename = "previews.sleep_after")]
    sleep_after: DurationValue,
    #[serde(rename = "previews.max_active")]
    max_active: CountValue,
    env: EnvValues,
}

/// What the operator lets repositories' files change, and how far.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BoundsBody {
    /// Whether files are read at all (`EPHEMERA_REPO_CONFIG`)
    read_files: bool,
    #[schema(schema_with = config_keys)]
    keys: Vec<&'static str>,
    /// The longest `previews.ttl` a file may ask for; null: no bound
    max_ttl: Option<String>,
    /// The longest `previews.sleep_after` a file may ask for; null: no
    /// bound
    max_sleep_after: Option<String>,
    /// The largest `previews.max_active` a file may ask for; null: no bound
    #[schema(minimum = 1)]
    max_active: Option<u32>,
    /// Globs over the variable names `env` may set
    env_names: Vec<String>,
    /// Live previews at once in the whole installation (`EPHEMERA_MAX_ACTIVE`); null: no cap
    #[schema(minimum = 1)]
    max_active_per_installation: Option<u32>,
}

/// Why the file is refused.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InvalidBody {
    /// The parser's error, with line and column when it knows them
    error: String,
}

/// A repository's effective configuration.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RepoConfigBody {
    /// `owner/name`
    repository: String,
    /// The App installation that lists the repository
    installation_id: i64,
    source: SourceBody,
    values: ValuesBody,
    /// What the file asked for that the operator refused, one line each, as
    /// the PR comment says it
    refused: Vec<String>,
    bounds: BoundsBody,
    /// Set when the file at this ref is invalid: PRs whose rules are read
    /// there get nothing new deployed (their running previews keep running)
    /// until it is fixed; `values` are then the operator's defaults
    invalid: Option<InvalidBody>,
}

impl RepoConfigBody {
    fn new(
        config: EffectiveConfig,
        settings: &ephemera_application::repo_config::RepoConfigSettings,
    ) -> Self {
        let EffectiveConfig {
            repository,
            installation,
            git_ref,
            resolved,
            origin,
            invalid,
        } = config;
        let source = |key: ConfigKey| {
            resolved
                .sources
                .get(&key)
                .copied()
                .unwrap_or(ValueSource::Default)
                .as_str()
        };
        let globs = |key: ConfigKey, value: &Vec<String>| GlobsValue {
            value: value.clone(),
            source: source(key),
        };
        let rules = &resolved.rules;
        let values = ValuesBody {
            mode: ModeValue {
                value: rules.mode.as_str(),
                source: source(ConfigKey::Mode),
            },
            branches: globs(ConfigKey::Branches, &rules.branches),
            paths_include: globs(ConfigKey::PathsInclude, &rules.paths_include),
            paths_exclude: globs(ConfigKey::PathsExclude, &rules.paths_exclude),
            skip_authors: globs(ConfigKey::SkipAuthors, &rules.skip_authors),
            skip_when_title_contains: globs(
                ConfigKey::SkipWhenTitleContains,
                &rules.skip_when_title_contains,
            ),
            ttl: DurationValue {
                value: rules.ttl.map(format_duration),
                source: source(ConfigKey::Ttl),
            },
            sleep_after: DurationValue {
                value: rules.sleep_after.map(format_duration),
                source: source(ConfigKey::SleepAfter),
            },
            max_active: CountValue {
                value: rules.max_active,
                source: source(ConfigKey::MaxActive),
            },
            env: EnvValues {
                value: rules.env.clone(),
                source: source(ConfigKey::Env),
            },
        };
        let source = match origin {
            FileOrigin::File { blob_sha, .. } => SourceBody {
                kind: "file",
                file: CONFIG_PATH,
                git_ref,
                blob_sha: Some(blob_sha),
                reason: None,
            },
            FileOrigin::Defaults(reason) => SourceBody {
                kind: "defaults",
                file: CONFIG_PATH,
                git_ref,
                blob_sha: None,
                reason: Some(reason),
            },
        };
        let bounds = &settings.bounds;
        Self {
            repository: repository.to_string(),
            installation_id: installation.get(),
            source,
            values,
            refused: resolved.refused,
            bounds: BoundsBody {
                read_files: settings.read_files,
                keys: bounds.allowed_keys.iter().map(|k| k.as_str()).collect(),
                max_ttl: bounds.max_ttl.map(format_duration),
                max_sleep_after: bounds.max_sleep_after.map(format_duration),
                max_active: bounds.max_active,
                env_names: bounds.env_names.clone(),
                max_active_per_installation: settings.max_active_per_installation,
            },
            invalid: invalid.map(|error| InvalidBody { error }),
        }
    }
}

/// `GET /api/v1/repositories/{owner}/{repo}/config`.
#[utoipa::path(get, path = "/api/v1/repositories/{owner}/{repo}/config", operation_id = "get_repository_config", tag = "repositories",
    params(RepositoryPath, ConfigQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The repository's effective configuration: its file at the ref (default branch unless `ref` is given) within the operator's bounds, over the operator's defaults, and where each value came from", body = RepoConfigBody), ConfigReadErrors))]
pub(crate) async fn effective(
    state: web::Data<AppState>,
    path: web::Path<RepositoryPath>,
    query: web::Query<ConfigQuery>,
) -> Result<HttpResponse, Problem> {
    let repository = RepositoryFullName::parse(&format!("{}/{}", path.owner, path.repo))
        .map_err(|e| Problem::bad_request(e.to_string()))?;
    let git_ref = query.git_ref.as_deref();
    if let Some(raw) = git_ref.filter(|r| !params::is_git_ref(r)) {
        return Err(Problem::bad_request(format!(
            "ref: `{raw}` is not a branch, tag or commit this API reads (1 to 255 of letters, digits and . _ / + @ -)"
        )));
    }
    let config = state
        .repo_configs
        .effective(&repository, git_ref)
        .await
        .map_err(|err| match err {
            EffectiveConfigError::NotFound(_) => Problem::not_found(err.to_string()),
            EffectiveConfigError::GitHubUnavailable(why) => {
                tracing::warn!(%repository, error = %why, "GitHub unavailable");
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "GitHub could not be asked for the file; try again later",
                )
                .with_header(actix_web::http::header::RETRY_AFTER, "30")
            }
            EffectiveConfigError::Failed(failure) => failure.into(),
        })?;
    Ok(HttpResponse::Ok().json(RepoConfigBody::new(config, state.repo_configs.settings())))
}
