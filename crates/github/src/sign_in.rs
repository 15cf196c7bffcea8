//! "Sign in with GitHub" through the App's own OAuth credentials (the
//! user-to-server flow): the code GitHub hands back becomes a token acting
//! for the person within the App's permissions, and the repositories they
//! reach are those of the App's installations they can see.

use async_trait::async_trait;
use ephemera_application::ports::{GitHubSignIn, Reachable, ReportError, SignedIn};
use ephemera_domain::RepositoryFullName;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::contents::encoded;
use crate::transport::{ACCEPT_VALUE, API_VERSION, USER_AGENT_VALUE};

/// Pages of 100 read at most per listing (10,000 installations or
/// repositories).
const MAX_PAGES: u32 = 100;

/// The App's OAuth client.
pub struct GitHubOAuth {
    client_id: String,
    client_secret: SecretString,
    /// Where people sign in (`https://github.com`).
    web_url: String,
    /// The REST API (`https://api.github.com`).
    api_url: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for GitHubOAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubOAuth")
            .field("client_id", &self.client_id)
            .field("web_url", &self.web_url)
            .finish_non_exhaustive()
    }
}

impl GitHubOAuth {
    pub fn new(
        client_id: String,
        client_secret: SecretString,
        web_url: &str,
        api_url: &str,
    ) -> Self {
        Self {
            client_id,
            client_secret,
            web_url: web_url.trim_end_matches('/').to_owned(),
            api_url: api_url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .user_agent(USER_AGENT_VALUE)
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    /// `GET {api}{path}` as `who`, read as JSON.
    async fn get<T: for<'de> Deserialize<'de>>(
        &self,
        token: &str,
        url: &str,
        what: &str,
    ) -> Result<(T, Option<String>), ReportError> {
        let response = self
            .http
            .get(url)
            .bearer_auth(token)
            .header("accept", ACCEPT_VALUE)
            .header("x-github-api-version", API_VERSION)
            .send()
            .await
            .map_err(|e| ReportError::Retry {
                message: format!("{what}: {e}"),
                after: None,
            })?;
        let status = response.status().as_u16();
        let next = response
            .headers()
            .get("link")
            .and_then(|v| v.to_str().ok())
            .and_then(next_link);
        match status {
            200 => Ok((
                response
                    .json()
                    .await
                    .map_err(|e| ReportError::Refused(format!("{what}: GitHub sent {e}")))?,
                next,
            )),
            401 | 403 => Err(ReportError::NotPermitted(format!(
                "{what}: {status} (the sign-in expired or was revoked)"
            ))),
            404 | 410 => Err(ReportError::Gone(format!("{what}: {status}"))),
            500..=599 => Err(ReportError::Retry {
                message: format!("{what}: {status}"),
                after: None,
            }),
            _ => Err(ReportError::Refused(format!("{what}: {status}"))),
        }
    }

    /// Every page of a listing whose items sit under `field`.
    async fn all<T: for<'de> Deserialize<'de>>(
        &self,
        token: &str,
        first: String,
        field: &str,
        what: &str,
    ) -> Result<Vec<T>, ReportError> {
        let mut items = Vec::new();
        let mut url = Some(first);
        let mut pages = 0;
        while let Some(at) = url.take() {
            pages += 1;
            let (mut page, next): (serde_json::Value, _) = self.get(token, &at, what).await?;
            let listed: Vec<T> = serde_json::from_value(page[field].take())
                .map_err(|e| ReportError::Refused(format!("{what}: GitHub sent {e}")))?;
            items.extend(listed);
            if pages < MAX_PAGES {
                url = next;
            }
        }
        Ok(items)
    }
}

/// The `rel="next"` address of a `Link` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, rel) = part.split_once(';')?;
        rel.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct User {
    login: String,
    id: i64,
}

#[derive(Deserialize)]
struct Installation {
    id: i64,
}

#[derive(Deserialize)]
struct Repository {
    full_name: String,
    #[serde(default)]
    permissions: Permissions,
}

#[derive(Deserialize, Default)]
struct Permissions {
    #[serde(default)]
    admin: bool,
    #[serde(default)]
    maintain: bool,
    #[serde(default)]
    push: bool,
}

#[async_trait]
impl GitHubSignIn for GitHubOAuth {
    fn authorize_url(&self, state: &str, redirect_uri: &str) -> String {
        format!(
            "{}/login/oauth/authorize?client_id={}&redirect_uri={}&state={}&allow_signup=false",
            self.web_url,
            encoded(&self.client_id),
            encoded(redirect_uri),
            encoded(state)
        )
    }

    async fn sign_in(&self, code: &str, redirect_uri: &str) -> Result<SignedIn, ReportError> {
        let answer: TokenAnswer = self
            .http
            .post(format!("{}/login/oauth/access_token", self.web_url))
            .header("accept", "application/json")
            .form(&[
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.expose_secret()),
                ("code", code),
                ("redirect_uri", redirect_uri),
            ])
            .send()
            .await
            .map_err(|e| ReportError::Retry {
                message: format!("exchanging the sign-in code: {e}"),
                after: None,
            })?
            .json()
            .await
            .map_err(|e| {
                ReportError::Refused(format!("exchanging the sign-in code: GitHub sent {e}"))
            })?;
        let token = match (answer.access_token, answer.error) {
            (Some(token), None) => token,
            (_, error) => {
                return Err(ReportError::Refused(format!(
                    "GitHub refused the sign-in: {}{}",
                    error.unwrap_or_else(|| "no token".to_owned()),
                    answer
                        .error_description
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                )));
            }
        };
        let (user, _): (User, _) = self
            .get(
                &token,
                &format!("{}/user", self.api_url),
                "reading the signed-in user",
            )
            .await?;
        Ok(SignedIn {
            login: user.login,
            github_id: user.id,
            token,
        })
    }

    async fn repositories(&self, who: &SignedIn) -> Result<Vec<Reachable>, ReportError> {
        let installations: Vec<Installation> = self
            .all(
                &who.token,
                format!("{}/user/installations?per_page=100", self.api_url),
                "installations",
                "listing the App's installations you can see",
            )
            .await?;
        let mut reachable = Vec::new();
        for installation in installations {
            let repositories: Vec<Repository> = self
                .all(
                    &who.token,
                    format!(
                        "{}/user/installations/{}/repositories?per_page=100",
                        self.api_url, installation.id
                    ),
                    "repositories",
                    "listing an installation's repositories you can see",
                )
                .await?;
            reachable.extend(repositories.into_iter().filter_map(|r| {
                Some(Reachable {
                    repository: RepositoryFullName::parse(&r.full_name).ok()?,
                    can_write: r.permissions.push || r.permissions.maintain || r.permissions.admin,
                })
            }));
        }
        Ok(reachable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorize_address_carries_the_client_state_and_return_address() {
        let oauth = GitHubOAuth::new(
            "Iv1.abc".into(),
            SecretString::from("s"),
            "https://github.com/",
            "https://api.github.com",
        );
        assert_eq!(
            oauth.authorize_url("st&te", "http://127.0.0.1:8080/oauth/callback"),
            "https://github.com/login/oauth/authorize?client_id=Iv1.abc&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Foauth%2Fcallback&state=st%26te&allow_signup=false"
        );
        assert_eq!(
            next_link("<https://api.github.com/user/installations?page=2>; rel=\"next\", <https://x?page=5>; rel=\"last\"").as_deref(),
            Some("https://api.github.com/user/installations?page=2")
        );
    }
}
