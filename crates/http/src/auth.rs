//! Who may call what: `EPHEMERA_API_TOKEN` as a bearer token for `/api/v1`
//! (reads and writes) and `/metrics`. The webhook has its own signature;
//! health probes and the API description are public.
//!
//! One middleware guards the whole `/api/v1` scope, so a read added later
//! is protected without anyone remembering to.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{ResponseError as _, web};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::{AppState, Problem};

/// `EPHEMERA_API_TOKEN`, parsed: trimmed, long enough, and kept only as its
/// SHA-256 so comparisons take the same time whatever the length of the
/// guess, and the token itself never sits in memory longer than start-up.
#[derive(Clone)]
pub struct ApiToken {
    digest: [u8; 32],
}

/// A token shorter than [`ApiToken::MIN_CHARS`] after trimming.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("is {0} characters long; use at least {min} (e.g. `openssl rand -hex 32`)", min = ApiToken::MIN_CHARS)]
pub struct TokenTooShort(pub usize);

impl ApiToken {
    /// Shorter tokens are guessable or placeholders (`changeme`, `dev`).
    pub const MIN_CHARS: usize = 16;

    pub fn parse(raw: &str) -> Result<Self, TokenTooShort> {
        let token = raw.trim();
        let chars = token.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(TokenTooShort(chars));
        }
        Ok(Self {
            digest: Sha256::digest(token.as_bytes()).into(),
        })
    }

    /// Whether `given` (trimmed) is this token, in constant time.
    pub fn matches(&self, given: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(given.trim().as_bytes()).into();
        digest.ct_eq(&self.digest).into()
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken([redacted])")
    }
}

/// The access rules in force, decided at start-up.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// Writes need it; reads too unless `anonymous_reads`.
    pub token: Option<ApiToken>,
    /// Reads (GET, HEAD) need no token: `EPHEMERA_ANONYMOUS_READS=true`, or
    /// no token on a loopback listener (the server decides which).
    pub anonymous_reads: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Read,
    Write,
}

fn unauthorized(detail: &str) -> Problem {
    Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
        .with_header(WWW_AUTHENTICATE, "Bearer realm=\"ephemera\"")
}

/// The credentials of `Authorization: Bearer <credentials>` (scheme
/// case-insensitive, as RFC 9110 says).
fn bearer(header: Option<&HeaderValue>) -> Option<&str> {
    let value = header?.to_str().ok()?.trim();
    let (scheme, credentials) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(credentials.trim())
}

impl Access {
    fn check(&self, need: Need, header: Option<&HeaderValue>) -> Result<(), Problem> {
        if need == Need::Read && self.anonymous_reads {
            return Ok(());
        }
        let Some(token) = &self.token else {
            return Err(unauthorized(match need {
                Need::Write => {
                    "writes are disabled: set EPHEMERA_API_TOKEN on the server and send `Authorization: Bearer <token>`"
                }
                Need::Read => {
                    "reads need a token: set EPHEMERA_API_TOKEN on the server and send `Authorization: Bearer <token>`"
                }
            }));
        };
        let given = bearer(header)
            .ok_or_else(|| unauthorized("send `Authorization: Bearer <EPHEMERA_API_TOKEN>`"))?;
        if token.matches(given) {
            Ok(())
        } else {
            Err(unauthorized("the bearer token is not EPHEMERA_API_TOKEN"))
        }
    }
}

/// Middleware: GET and HEAD are reads, every other method a write.
pub(crate) async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let need = if matches!(*req.method(), Method::GET | Method::HEAD) {
        Need::Read
    } else {
        Need::Write
    };
    let verdict = match req.app_data::<web::Data<AppState>>() {
        Some(state) => state.access.check(need, req.headers().get(AUTHORIZATION)),
        // Not wired: refuse rather than serve unguarded.
        None => Err(unauthorized("access rules are not configured")),
    };
    match verdict {
        Ok(()) => Ok(next.call(req).await?.map_into_boxed_body()),
        Err(problem) => Ok(req.into_response(problem.error_response())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef-token";

    fn header(value: &'static str) -> HeaderValue {
        HeaderValue::from_static(value)
    }

    #[test]
    fn tokens_are_trimmed_and_need_sixteen_characters() {
        assert_eq!(ApiToken::parse("dev").unwrap_err(), TokenTooShort(3));
        assert_eq!(
            ApiToken::parse("   fifteen-chars  ").unwrap_err(),
            TokenTooShort(13)
        );
        let token = ApiToken::parse(&format!(" {TOKEN}\n")).unwrap();
        assert!(token.matches(TOKEN));
        assert!(token.matches(&format!("\t{TOKEN} ")));
        assert!(!token.matches("0123456789abcdef-tokem"));
        assert!(!token.matches(&format!("{TOKEN}2")));
        assert!(!token.matches(""));
        assert!(!format!("{token:?}").contains(TOKEN));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_other_schemes_are_not_bearer() {
        assert_eq!(bearer(Some(&header("Bearer abc"))), Some("abc"));
        assert_eq!(bearer(Some(&header("bearer   abc "))), Some("abc"));
        assert_eq!(bearer(Some(&header("Basic YWJj"))), None);
        assert_eq!(bearer(Some(&header("Bearer"))), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn reads_and_writes_follow_the_rules() {
        let token = ApiToken::parse(TOKEN).unwrap();
        let good = header("Bearer 0123456789abcdef-token");
        let bad = header("Bearer 0123456789abcdef-tokem");
        let guarded = Access {
            token: Some(token.clone()),
            anonymous_reads: false,
        };
        for need in [Need::Read, Need::Write] {
            assert!(guarded.check(need, Some(&good)).is_ok());
            assert_eq!(guarded.check(need, Some(&bad)).unwrap_err().status, 401);
            assert_eq!(guarded.check(need, None).unwrap_err().status, 401);
        }
        let open_reads = Access {
            token: Some(token),
            anonymous_reads: true,
        };
        assert!(open_reads.check(Need::Read, None).is_ok());
        assert!(open_reads.check(Need::Write, None).is_err());
        let local = Access {
            token: None,
            anonymous_reads: true,
        };
        assert!(local.check(Need::Read, None).is_ok());
        let refused = local.check(Need::Write, Some(&good)).unwrap_err();
        assert!(
            refused.detail.starts_with("writes are disabled"),
            "{refused}"
        );
    }
}
