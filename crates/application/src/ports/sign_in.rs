use async_trait::async_trait;
use ephemera_domain::RepositoryFullName;

use super::ReportError;

/// A person signed in with GitHub (the App's OAuth user-to-server flow).
#[derive(Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub login: String,
    pub github_id: i64,
    /// The user-to-server token: it acts for this person, within the App's
    /// permissions.
    pub token: String,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("login", &self.login)
            .field("github_id", &self.github_id)
            .finish_non_exhaustive()
    }
}

/// A repository a signed-in person reaches through the App's installations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reachable {
    pub repository: RepositoryFullName,
    /// They may push to it (write, maintain or admin): they may act on its
    /// previews.
    pub can_write: bool,
}

/// "Sign in with GitHub" through the App's own OAuth credentials.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait GitHubSignIn: Send + Sync {
    /// Where to send the browser to sign in; GitHub sends it back to
    /// `redirect_uri` with a code and `state`.
    fn authorize_url(&self, state: &str, redirect_uri: &str) -> String;

    /// The person the code GitHub handed back stands for.
    async fn sign_in(&self, code: &str, redirect_uri: &str) -> Result<SignedIn, ReportError>;

    /// The repositories `who` reaches through the App's installations
    /// (GitHub's `/user/installations` and their repositories).
    async fn repositories(&self, who: &SignedIn) -> Result<Vec<Reachable>, ReportError>;
}
