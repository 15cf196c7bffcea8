use std::fmt;
use std::str::FromStr;

use crate::ValidationError;

/// Defines a positive integer identifier newtype with parsing at the edge.
macro_rules! positive_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(i64);

        impl $name {
            pub fn new(value: i64) -> Result<Self, ValidationError> {
                if value > 0 {
                    Ok(Self(value))
                } else {
                    Err(ValidationError::new($field, format!("must be a positive integer, got {value}")))
                }
            }

            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = ValidationError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let value = s
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| ValidationError::new($field, format!("`{s}` is not an integer")))?;
                Self::new(value)
            }
        }
    };
}

positive_id!(
    /// Database identity of an environment.
    EnvironmentId,
    "environment id"
);
positive_id!(
    /// Database identity of a deployment.
    DeploymentId,
    "deployment id"
);
positive_id!(
    /// A GitHub user's numeric id (stable across login renames).
    GithubUserId,
    "GitHub user id"
);
positive_id!(
    /// A GitHub App installation id.
    InstallationId,
    "installation id"
);

/// A pull request number within its repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PrNumber(u32);

impl PrNumber {
    pub fn new(value: i64) -> Result<Self, ValidationError> {
        u32::try_from(value)
            .ok()
            .filter(|n| *n > 0)
            .map(Self)
            .ok_or_else(|| {
                ValidationError::new(
                    "pr number",
                    format!("must be between 1 and {}, got {value}", u32::MAX),
                )
            })
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for PrNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for PrNumber {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value = s
            .trim()
            .parse::<i64>()
            .map_err(|_| ValidationError::new("pr number", format!("`{s}` is not an integer")))?;
        Self::new(value)
    }
}

/// A full git commit id: 40 hex digits (SHA-1) or 64 (SHA-256 repositories),
/// kept in lowercase so that equal commits compare equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CommitSha(String);

impl CommitSha {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let valid_len = raw.len() == 40 || raw.len() == 64;
        if valid_len && raw.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(raw.to_ascii_lowercase()))
        } else {
            Err(ValidationError::new(
                "commit sha",
                format!("`{raw}` is not a 40 or 64 digit hexadecimal commit id"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The seven-digit form people read in GitHub's UI.
    pub fn short(&self) -> &str {
        &self.0[..7]
    }
}

impl fmt::Display for CommitSha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_must_be_positive() {
        assert!(EnvironmentId::new(1).is_ok());
        assert_eq!(
            EnvironmentId::new(0).unwrap_err().to_string(),
            "invalid environment id: must be a positive integer, got 0"
        );
        assert!("abc".parse::<DeploymentId>().is_err());
        assert_eq!("42".parse::<InstallationId>().unwrap().get(), 42);
    }

    #[test]
    fn pr_numbers_are_positive_u32() {
        assert_eq!(PrNumber::new(2).unwrap().get(), 2);
        assert!(PrNumber::new(0).is_err());
        assert!(PrNumber::new(-3).is_err());
        assert!(PrNumber::new(i64::from(u32::MAX) + 1).is_err());
        assert!("x1".parse::<PrNumber>().is_err());
    }

    #[test]
    fn commit_sha_accepts_sha1_and_sha256_and_normalises_case() {
        let sha = CommitSha::parse("EC26C3E57CA3A959CA5AAD62DE7213C562F8C821").unwrap();
        assert_eq!(sha.as_str(), "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
        assert_eq!(sha.short(), "ec26c3e");
        assert!(CommitSha::parse(&"a".repeat(64)).is_ok());
        assert!(CommitSha::parse("ec26c3e").is_err());
        assert!(CommitSha::parse(&"g".repeat(40)).is_err());
    }
}
