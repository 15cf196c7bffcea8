use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::{InstallationId, RepositoryFullName, ValidationError};

/// Whether a GitHub App installation may get new deployments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstallationStatus {
    Active,
    Suspended,
    Deleted,
}

impl InstallationStatus {
    pub const ALL: [Self; 3] = [Self::Active, Self::Suspended, Self::Deleted];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleted => "deleted",
        }
    }
}

impl fmt::Display for InstallationStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for InstallationStatus {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new(
                    "installation status",
                    format!("`{s}` is not one of active, suspended, deleted"),
                )
            })
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
pub struct InstallationRepository {
    pub github_id: i64,
    pub full_name: RepositoryFullName,
}

/// A GitHub App installation on a user or organisation account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installation {
    pub id: InstallationId,
    pub account_login: String,
    pub status: InstallationStatus,
    pub repositories: Vec<InstallationRepository>,
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
