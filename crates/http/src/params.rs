//! The formats of path and query parameters, written once: the OpenAPI
//! description states them (`schema_with`) and the handlers refuse exactly
//! what falls outside them. The tests below hold each pattern against the
//! parser that enforces it, so the two cannot drift apart.

use ephemera_application::pagination::MAX_LIMIT;
use ephemera_domain::{DeliveryOutcome, EnvironmentStatus};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, Object, ObjectBuilder, Schema, SchemaFormat, Type};

/// `owner/name` as GitHub spells it (`RepositoryFullName::parse`).
pub(crate) const REPOSITORY: &str = r"^[A-Za-z0-9_-]{1,39}/[A-Za-z0-9._-]{1,100}$";
/// A DNS-1123 label (`Namespace::parse`).
pub(crate) const NAMESPACE: &str = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$";
/// An `X-GitHub-Delivery` GUID (`DeliveryId::parse`).
pub(crate) const DELIVERY_ID: &str = r"^[A-Za-z0-9-]{1,64}$";
/// A GitHub event name (`pull_request`, `installation_repositories`).
pub(crate) const EVENT: &str = r"^[a-z0-9_]{1,64}$";
/// A repository's owner, as in [`REPOSITORY`].
pub(crate) const OWNER: &str = r"^[A-Za-z0-9_-]{1,39}$";
/// A repository's name, as in [`REPOSITORY`].
pub(crate) const REPO: &str = r"^[A-Za-z0-9._-]{1,100}$";
/// A branch, tag or commit SHA, as the configuration endpoint reads one
/// ([`is_git_ref`]): the characters real refs are made of.
pub(crate) const GIT_REF: &str = r"^[A-Za-z0-9._/+@-]{1,255}$";
/// A keyset cursor: 8 bytes in unpadded base64url (`Cursor::decode`).
pub(crate) const CURSOR: &str = r"^[A-Za-z0-9_-]{10}[AEIMQUYcgkosw048]$";

/// The largest id: ids are positive and fit in 63 bits.
const MAX_ID: i64 = i64::MAX;

// utoipa drops a `schema_with` parameter's doc comment, so each schema
// carries its description; openapi.rs lifts it onto the parameter.

fn string(pattern: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
}

/// A database id: 1 to 2^63 - 1.
pub(crate) fn id() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(1))
        .maximum(Some(MAX_ID))
        .description(Some("An id: 1 to 9223372036854775807 (2^63 - 1)"))
        .build()
}

pub(crate) fn pr_number() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(1))
        .maximum(Some(u32::MAX))
        .description(Some("A PR number; combine with `repository` for one PR"))
        .build()
}

pub(crate) fn limit() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
        .minimum(Some(1))
        .maximum(Some(MAX_LIMIT))
        .default(Some(ephemera_application::pagination::DEFAULT_LIMIT.into()))
        .description(Some("Page size, 1 to 200 (default 50)"))
        .build()
}

/// `active_only`.
pub(crate) fn active_only() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Boolean)
        .default(Some(false.into()))
        .description(Some("`true` leaves out destroyed environments"))
        .build()
}

pub(crate) fn repository() -> Object {
    string(REPOSITORY)
        .description(Some("`owner/name`, exactly as GitHub spells it"))
        .build()
}

pub(crate) fn namespace() -> Object {
    string(NAMESPACE)
        .description(Some(
            "The preview's Kubernetes namespace (a DNS-1123 label)",
        ))
        .build()
}

pub(crate) fn delivery_id() -> Object {
    string(DELIVERY_ID)
        .description(Some("The X-GitHub-Delivery id"))
        .build()
}

pub(crate) fn event() -> Object {
    string(EVENT)
        .description(Some("An event name, e.g. `pull_request`"))
        .build()
}

pub(crate) fn cursor() -> Object {
    string(CURSOR)
        .description(Some(
            "Where the next page starts; take it from the `Link` header",
        ))
        .build()
}

pub(crate) fn owner() -> Object {
    string(OWNER)
        .description(Some("The repository's owner, as GitHub spells it"))
        .examples(["Codertocat"])
        .build()
}

pub(crate) fn repo() -> Object {
    string(REPO)
        .description(Some("The repository's name, as GitHub spells it"))
        .examples(["Hello-World"])
        .build()
}

pub(crate) fn git_ref() -> Object {
    string(GIT_REF)
        .description(Some(
            "A branch, tag or commit SHA; the repository's default branch when absent",
        ))
        .build()
}

/// A string that is one of `values` (a domain enum's `ALL`, so the
/// description lists what the code has).
pub(crate) fn one_of<const N: usize>(
    values: [&'static str; N],
    description: &str,
) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .description(Some(description))
}

pub(crate) fn environment_status() -> Object {
    one_of(
        EnvironmentStatus::ALL.map(EnvironmentStatus::as_str),
        "One status, e.g. `ready`",
    )
    .build()
}

pub(crate) fn delivery_outcome() -> Object {
    one_of(
        DeliveryOutcome::ALL.map(DeliveryOutcome::as_str),
        "What became of the delivery",
    )
    .build()
}

/// A delivery's body as the description states it: a JSON object. The
/// envelope fields (`action`, `repository`, `installation`, `sender`) are
/// held to their GitHub shapes only on the events ephemera acts on (a
/// 400 names the field there); on any other event they are read for what
/// they are worth and never refuse the delivery, so they are described as
/// any JSON value.
pub(crate) struct WebhookPayload;

impl utoipa::PartialSchema for WebhookPayload {
    fn schema() -> RefOr<Schema> {
        let any = |description: &str| {
            ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
                .description(Some(description))
        };
        ObjectBuilder::new()
            .property(
                "action",
                any("the event's action: a string on the events ephemera acts on"),
            )
            .property(
                "repository",
                any("on the events ephemera acts on: `{id, full_name}`, `full_name` as `owner/name`"),
            )
            .property(
                "installation",
                any("on the events ephemera acts on: `{id, updated_at?}`; `id` is required on installation events"),
            )
            .property(
                "sender",
                any("on the events ephemera acts on: `{id, login, email?, avatar_url?}`"),
            )
            .into()
    }
}

impl utoipa::ToSchema for WebhookPayload {}

/// `true` or `false`, naming the field when it is neither: exactly the
/// JSON booleans the description promises.
pub(crate) fn parse_bool(field: &str, raw: Option<&str>) -> Result<bool, crate::Problem> {
    match raw {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(crate::Problem::bad_request(format!(
            "{field}: `{other}` is not true or false"
        ))),
    }
}

/// A ref, as [`GIT_REF`] describes it.
pub(crate) fn is_git_ref(raw: &str) -> bool {
    (1..=255).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/+@-".contains(&b))
}

/// A GitHub event name, as [`EVENT`] describes it.
pub(crate) fn is_event_name(raw: &str) -> bool {
    (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    /// `X-Hub-Signature-256`, as the webhook's description states it (the
    /// signature is read by webhook/signature.rs).
    pub(crate) const SIGNATURE: &str = r"^sha256=[0-9a-fA-F]{64}$";

    use ephemera_application::Cursor;
    use ephemera_domain::{DeliveryId, Namespace, RepositoryFullName};
    use proptest::prelude::*;
    use proptest::string::string_regex;

    use super::*;

    /// Strings near a pattern: from its own alphabet and a little beyond,
    /// of lengths around its bounds, so both sides of every rule are hit.
    fn near(alphabet: &'static str, max_len: usize) -> impl Strategy<Value = String> {
        string_regex(&format!("[{alphabet}/. _\\-é\n]{{0,{max_len}}}")).unwrap()
    }

    fn agrees(pattern: &str, parses: impl Fn(&str) -> bool, raw: &str) {
        let matches = regex::Regex::new(pattern).unwrap().is_match(raw);
        assert_eq!(
            matches,
            parses(raw),
            "{raw:?}: the description says {matches}, the parser {}",
            parses(raw)
        );
    }

    /// Every string a pattern allows (generated from the pattern itself,
    /// anchors stripped) parses.
    fn generated(pattern: &str) -> impl Strategy<Value = String> {
        string_regex(pattern.trim_start_matches('^').trim_end_matches('$')).unwrap()
    }

    fn repository_parses(raw: &str) -> bool {
        RepositoryFullName::parse(raw).is_ok()
    }
    fn namespace_parses(raw: &str) -> bool {
        Namespace::parse(raw).is_ok()
    }
    fn delivery_id_parses(raw: &str) -> bool {
        DeliveryId::parse(raw).is_ok()
    }
    fn cursor_parses(raw: &str) -> bool {
        Cursor::decode(raw).is_ok()
    }

    proptest! {
        #[test]
        fn repository_pattern_is_the_parser(raw in near("A-Za-z0-9", 150)) {
            agrees(REPOSITORY, repository_parses, &raw);
        }

        #[test]
        fn every_documented_repository_parses(raw in generated(REPOSITORY)) {
            prop_assert!(repository_parses(&raw), "{raw:?}");
        }

        #[test]
        fn owner_pattern_is_the_parser(raw in near("A-Za-z0-9", 45)) {
            agrees(OWNER, |o| !o.contains('/') && repository_parses(&format!("{o}/x")), &raw);
        }

        #[test]
        fn repo_pattern_is_the_parser(raw in near("A-Za-z0-9", 110)) {
            agrees(REPO, |r| repository_parses(&format!("x/{r}")), &raw);
        }

        #[test]
        fn git_ref_pattern_is_the_parser(raw in near("A-Za-z0-9+@", 260)) {
            agrees(GIT_REF, is_git_ref, &raw);
        }

        #[test]
        fn namespace_pattern_is_the_parser(raw in near("a-z0-9A", 70)) {
            agrees(NAMESPACE, namespace_parses, &raw);
        }

        #[test]
        fn every_documented_namespace_parses(raw in generated(NAMESPACE)) {
            prop_assert!(namespace_parses(&raw), "{raw:?}");
        }

        #[test]
        fn delivery_id_pattern_is_the_parser(raw in near("A-Za-z0-9", 70)) {
            agrees(DELIVERY_ID, delivery_id_parses, &raw);
        }

        #[test]
        fn event_pattern_is_the_parser(raw in near("a-z0-9A", 70)) {
            agrees(EVENT, is_event_name, &raw);
        }

        #[test]
        fn cursor_pattern_is_the_parser(raw in near("A-Za-z0-9", 14)) {
            agrees(CURSOR, cursor_parses, &raw);
        }

        #[test]
        fn every_documented_cursor_parses(raw in generated(CURSOR)) {
            prop_assert!(cursor_parses(&raw), "{raw:?}");
        }

        #[test]
        fn every_cursor_handed_out_is_documented(id in 1..=i64::MAX) {
            let encoded = Cursor { before_id: id }.encode();
            prop_assert!(regex::Regex::new(CURSOR).unwrap().is_match(&encoded), "{encoded}");
        }
    }

    #[test]
    fn booleans_are_exactly_true_and_false() {
        assert!(parse_bool("f", Some("true")).unwrap());
        assert!(!parse_bool("f", Some("false")).unwrap());
        assert!(!parse_bool("f", None).unwrap());
        for raw in ["1", "0", "True", "yes", ""] {
            assert!(parse_bool("f", Some(raw)).is_err(), "{raw}");
        }
    }
}
