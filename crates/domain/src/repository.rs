use std::fmt;

use crate::ValidationError;

/// `owner/name` of a GitHub repository, as GitHub spells it.
///
/// GitHub treats names case-insensitively, so [`RepositoryFullName::key`]
/// gives the lowercase form used wherever two spellings must be one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepositoryFullName {
    full: String,
    slash: usize,
}

const MAX_OWNER_LEN: usize = 39;
const MAX_NAME_LEN: usize = 100;

impl RepositoryFullName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let invalid = |reason: &str| {
            ValidationError::new(
                "repository",
                format!("`{raw}` is not `owner/name`: {reason}"),
            )
        };
        let (owner, name) = raw.split_once('/').ok_or_else(|| invalid("missing `/`"))?;
        if owner.is_empty() || owner.len() > MAX_OWNER_LEN {
            return Err(invalid("the owner must be 1 to 39 characters"));
        }
        // Enterprise Managed Users' logins carry `_<shortcode>`.
        if !owner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        {
            return Err(invalid(
                "the owner may hold only letters, digits, `-` and `_`",
            ));
        }
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err(invalid("the name must be 1 to 100 characters"));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(invalid(
                "the name may hold only letters, digits, `-`, `_` and `.`",
            ));
        }
        Ok(Self {
            full: raw.to_owned(),
            slash: owner.len(),
        })
    }

    pub fn owner(&self) -> &str {
        &self.full[..self.slash]
    }

    pub fn name(&self) -> &str {
        &self.full[self.slash + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// Lowercase identity: `Octo/Repo` and `octo/repo` are the same repository.
    pub fn key(&self) -> String {
        self.full.to_ascii_lowercase()
    }
}

impl fmt::Display for RepositoryFullName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_owner_and_name() {
        let repo = RepositoryFullName::parse("Codertocat/Hello-World").unwrap();
        assert_eq!(repo.owner(), "Codertocat");
        assert_eq!(repo.name(), "Hello-World");
        assert_eq!(repo.to_string(), "Codertocat/Hello-World");
        assert_eq!(repo.key(), "codertocat/hello-world");
        assert!(RepositoryFullName::parse("octo-org/my_repo.rs").is_ok());
        // An Enterprise Managed User's login.
        let emu = RepositoryFullName::parse("mona_octo/web").unwrap();
        assert_eq!(emu.owner(), "mona_octo");
    }

    #[test]
    fn rejects_malformed_names() {
        for raw in [
            "",
            "no-slash",
            "/name",
            "owner/",
            "own er/name",
            "owner/na/me",
            "owner/näme",
            &format!("{}/x", "a".repeat(40)),
        ] {
            let err = RepositoryFullName::parse(raw).unwrap_err();
            assert_eq!(err.field, "repository", "{raw}");
        }
    }
}
