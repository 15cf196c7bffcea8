use std::fmt;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use crate::{PrNumber, RepositoryFullName, ValidationError};

/// The Kubernetes namespace (and general resource name) of one PR's preview:
/// a DNS-1123 label, at most 63 characters of `[a-z0-9-]` that start and end
/// with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace(String);

const MAX_LEN: usize = 63;
/// Hex digits of the repository hash: 40 bits keep two repositories that
/// slug alike (`org-a/api`, `org-b/api`) apart with overwhelming odds, and
/// the database's unique index catches the rest.
const HASH_LEN: usize = 10;
/// Longest prefix [`Namespace::prefixed`] takes: with it, `pr-<any u32>-`
/// and the hash always fit in 63 characters.
pub const MAX_PREFIX_LEN: usize = 20;

impl Namespace {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let invalid = |reason: &str| ValidationError::new("namespace", format!("`{raw}` {reason}"));
        if raw.is_empty() || raw.len() > MAX_LEN {
            return Err(invalid("must be 1 to 63 characters long"));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid("may hold only lowercase letters, digits and `-`"));
        }
        if raw.starts_with('-') || raw.ends_with('-') {
            return Err(invalid("must start and end with a letter or digit"));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The namespace of a PR: `pr-<number>-<repo slug>-<hash>`.
    ///
    /// Readable at a glance, the same every time for the same PR, and unique
    /// across owners: the hash is over the case-folded full name, so only
    /// the same repository (in any spelling) yields the same namespace.
    pub fn for_pr(repository: &RepositoryFullName, pr: PrNumber) -> Self {
        Self::labelled(&repository.key(), repository.name(), pr)
    }

    /// `pr-<number>-<slug of name>-<10 hex of sha256(identity)>`.
    fn labelled(identity: &str, name: &str, pr: PrNumber) -> Self {
        let digest = Sha256::digest(identity.as_bytes());
        let mut hash = String::with_capacity(HASH_LEN);
        for byte in digest.iter().take(HASH_LEN / 2) {
            // Writing to a String cannot fail.
            let _ = write!(hash, "{byte:02x}");
        }

        let prefix = format!("pr-{pr}-");
        let room = MAX_LEN - prefix.len() - 1 - HASH_LEN;
        let slug = slug(name, room);

        let label = if slug.is_empty() {
            format!("{prefix}{hash}")
        } else {
            format!("{prefix}{slug}-{hash}")
        };
        Self(label)
    }

    /// [`Self::for_pr`] for a repository GitHub knows by `repository_id`:
    /// the hash is over the id, which survives renames, so a repository
    /// renamed away and a new one taking its old name never share a
    /// namespace. The slug still shows the name it had then.
    pub fn for_repository_pr(
        repository_id: i64,
        repository: &RepositoryFullName,
        pr: PrNumber,
    ) -> Self {
        Self::labelled(&format!("id:{repository_id}"), repository.name(), pr)
    }

    /// This namespace under `prefix`: `<prefix>-<namespace>`, so that
    /// several ephemera instances can share a cluster. Still a DNS-1123
    /// label of at most 63 characters: when too long, characters are cut
    /// just before the trailing `-<hash>` (from the repository slug of a
    /// generated namespace), keeping the `pr-<number>-` start and the hash
    /// that make it unique. `prefix` is itself a label of at most
    /// [`MAX_PREFIX_LEN`] characters.
    pub fn prefixed(&self, prefix: &str) -> Result<Self, ValidationError> {
        if Self::parse(prefix).is_err() || prefix.len() > MAX_PREFIX_LEN {
            return Err(ValidationError::new(
                "namespace prefix",
                format!(
                    "`{prefix}` must be 1 to {MAX_PREFIX_LEN} lowercase letters, digits and `-`, \
                     starting and ending with a letter or digit"
                ),
            ));
        }
        let whole = format!("{prefix}-{}", self.0);
        if whole.len() <= MAX_LEN {
            return Ok(Self(whole));
        }
        // Too long means self is longer than MAX_LEN - MAX_PREFIX_LEN - 1
        // characters (all ASCII), so both cuts below are in range.
        let excess = whole.len() - MAX_LEN;
        let (head, tail) = self.0.split_at(self.0.len() - (HASH_LEN + 1));
        let head = head[..head.len() - excess].trim_end_matches('-');
        Ok(Self(format!("{prefix}-{head}{tail}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Lowercase `[a-z0-9-]` form of `name`, runs of other characters folded into
/// one `-`, no leading or trailing `-`, at most `max` characters.
fn slug(name: &str, max: usize) -> String {
    let mut out = String::with_capacity(name.len().min(max));
    for c in name.chars() {
        if out.len() == max {
            break;
        }
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn repo(raw: &str) -> RepositoryFullName {
        RepositoryFullName::parse(raw).unwrap()
    }

    fn pr(n: u32) -> PrNumber {
        PrNumber::new(i64::from(n)).unwrap()
    }

    #[test]
    fn readable_namespace_for_a_pr() {
        let ns = Namespace::for_pr(&repo("Codertocat/Hello-World"), pr(2));
        assert!(ns.as_str().starts_with("pr-2-hello-world-"), "{ns}");
        assert_eq!(ns.as_str().len(), "pr-2-hello-world-".len() + HASH_LEN);
    }

    #[test]
    fn same_repo_name_under_two_owners_gets_two_namespaces() {
        let a = Namespace::for_pr(&repo("org-a/api"), pr(5));
        let b = Namespace::for_pr(&repo("org-b/api"), pr(5));
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("pr-5-api-"));
        assert!(b.as_str().starts_with("pr-5-api-"));
    }

    #[test]
    fn spelling_of_the_repository_does_not_matter() {
        assert_eq!(
            Namespace::for_pr(&repo("Octo/Repo"), pr(9)),
            Namespace::for_pr(&repo("octo/repo"), pr(9))
        );
    }

    #[test]
    fn a_repository_known_by_id_keeps_apart_from_one_that_took_its_old_name() {
        let renamed_away = Namespace::for_repository_pr(1, &repo("octo/web"), pr(5));
        let took_the_name = Namespace::for_repository_pr(2, &repo("octo/web"), pr(5));
        assert_ne!(renamed_away, took_the_name);
        assert!(renamed_away.as_str().starts_with("pr-5-web-"));
        assert!(Namespace::parse(renamed_away.as_str()).is_ok());
    }

    #[test]
    fn names_without_letters_or_digits_still_give_a_label() {
        let ns = Namespace::for_pr(&repo("octo/..."), pr(1));
        assert!(Namespace::parse(ns.as_str()).is_ok(), "{ns}");
        assert!(ns.as_str().starts_with("pr-1-"));
    }

    #[test]
    fn parse_enforces_dns_1123() {
        assert!(Namespace::parse("pr-1-web-abc").is_ok());
        assert!(Namespace::parse(&"a".repeat(63)).is_ok());
        for bad in ["", "-a", "a-", "A", "a_b", "a.b", &"a".repeat(64)] {
            assert!(Namespace::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn prefixed_namespaces_stay_labels() {
        let short = Namespace::for_pr(&repo("octo/web"), pr(7));
        assert_eq!(
            short.prefixed("staging").unwrap().as_str(),
            format!("staging-{short}")
        );
        let long = Namespace::for_pr(&repo(&format!("octo/{}", "a".repeat(100))), pr(7));
        let prefixed = long.prefixed("production-eu-west-1").unwrap();
        assert_eq!(prefixed.as_str().len(), 63);
        assert!(
            prefixed
                .as_str()
                .starts_with("production-eu-west-1-pr-7-aaa")
        );
        assert!(
            prefixed
                .as_str()
                .ends_with(&long.as_str()[long.as_str().len() - 11..])
        );
        for bad in ["", "Staging", "-x", "x-", "a_b", &"a".repeat(21)] {
            assert!(short.prefixed(bad).is_err(), "{bad:?}");
        }
    }

    fn prefix() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?"
    }

    fn github_repository() -> impl Strategy<Value = RepositoryFullName> {
        ("[A-Za-z0-9][A-Za-z0-9-]{0,38}", "[A-Za-z0-9._-]{1,100}")
            .prop_map(|(owner, name)| repo(&format!("{owner}/{name}")))
    }

    proptest! {
        #[test]
        fn every_generated_namespace_is_a_valid_label(
            repository in github_repository(),
            number in 1u32..=u32::MAX,
        ) {
            let ns = Namespace::for_pr(&repository, pr(number));
            prop_assert!(Namespace::parse(ns.as_str()).is_ok(), "{}", ns);
            let expected_prefix = format!("pr-{number}-");
            prop_assert!(ns.as_str().starts_with(&expected_prefix));
        }

        #[test]
        fn every_namespace_by_repository_id_is_a_valid_label(
            repository in github_repository(),
            id in 1i64..=i64::MAX,
            number in 1u32..=u32::MAX,
        ) {
            let ns = Namespace::for_repository_pr(id, &repository, pr(number));
            prop_assert!(Namespace::parse(ns.as_str()).is_ok(), "{}", ns);
        }

        #[test]
        fn every_prefixed_namespace_is_a_valid_label_keeping_number_and_hash(
            repository in github_repository(),
            number in 1u32..=u32::MAX,
            prefix in prefix(),
        ) {
            let ns = Namespace::for_pr(&repository, pr(number));
            let prefixed = ns.prefixed(&prefix).unwrap();
            prop_assert!(Namespace::parse(prefixed.as_str()).is_ok(), "{}", prefixed);
            let expected_start = format!("{prefix}-pr-{number}-");
            prop_assert!(prefixed.as_str().starts_with(&expected_start), "{}", prefixed);
            let hash = &ns.as_str()[ns.as_str().len() - HASH_LEN..];
            prop_assert!(prefixed.as_str().ends_with(hash), "{}", prefixed);
        }

        #[test]
        fn distinct_prs_get_distinct_prefixed_namespaces(
            a in github_repository(),
            b in github_repository(),
            n in 1u32..1000,
            m in 1u32..1000,
            prefix in prefix(),
        ) {
            prop_assume!(a.key() != b.key() || n != m);
            prop_assert_ne!(
                Namespace::for_pr(&a, pr(n)).prefixed(&prefix).unwrap(),
                Namespace::for_pr(&b, pr(m)).prefixed(&prefix).unwrap()
            );
        }

        #[test]
        fn namespace_is_stable_for_a_pr(repository in github_repository(), number in 1u32..100_000) {
            prop_assert_eq!(
                Namespace::for_pr(&repository, pr(number)),
                Namespace::for_pr(&repository.clone(), pr(number))
            );
        }

        #[test]
        fn distinct_prs_get_distinct_namespaces(
            a in github_repository(),
            b in github_repository(),
            n in 1u32..1000,
            m in 1u32..1000,
        ) {
            prop_assume!(a.key() != b.key() || n != m);
            prop_assert_ne!(Namespace::for_pr(&a, pr(n)), Namespace::for_pr(&b, pr(m)));
        }
    }
}
