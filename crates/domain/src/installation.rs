use chrono::{DateTime, Utc};

use crate::{InstallationId, RepositoryFullName};

crate::string_enum! {
    /// Whether a GitHub App installation may get new deployments.
    pub enum InstallationStatus ("installation status") {
        Active = "active",
        Suspended = "suspended",
        Deleted = "deleted",
    }
}

/// The GitHub accounts whose installations ephemera serves
/// (`EPHEMERA_ALLOWED_OWNERS`); deliveries for any other account are
/// recorded and ignored. Empty: every account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedOwners(Vec<String>);

impl AllowedOwners {
    /// Every account is served.
    pub fn any() -> Self {
        Self::default()
    }

    /// Only these logins (compared case-insensitively, as GitHub does).
    pub fn only(logins: impl IntoIterator<Item = String>) -> Self {
        Self(
            logins
                .into_iter()
                .map(|l| l.trim().to_ascii_lowercase())
                .filter(|l| !l.is_empty())
                .collect(),
        )
    }

    pub fn allows(&self, login: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|l| l.eq_ignore_ascii_case(login))
    }
}

/// A repository an installation can see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledRepository {
    pub github_id: i64,
    pub full_name: RepositoryFullName,
}

/// A GitHub App installation on a user or organisation account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    pub id: InstallationId,
    pub account_login: String,
    pub status: InstallationStatus,
    pub repositories: Vec<InstalledRepository>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_owners_compare_like_github() {
        assert!(AllowedOwners::any().allows("anyone"));
        let only = AllowedOwners::only(["Octo-Org".to_owned(), " mona_emu ".to_owned()]);
        assert!(only.allows("octo-org"));
        assert!(only.allows("MONA_emu"));
        assert!(!only.allows("attacker"));
    }
}
