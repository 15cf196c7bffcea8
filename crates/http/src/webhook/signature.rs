//! `X-Hub-Signature-256`: HMAC-SHA256 of the raw body with the webhook
//! secret, compared in constant time (hmac's `verify_slice`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignatureError {
    Missing,
    Malformed,
    Mismatch,
}

impl SignatureError {
    pub(crate) fn detail(self) -> &'static str {
        match self {
            Self::Missing => {
                "X-Hub-Signature-256 is missing; GitHub sends it when the webhook has a secret"
            }
            Self::Malformed => "X-Hub-Signature-256 is not `sha256=<64 hex digits>`",
            Self::Mismatch => {
                "X-Hub-Signature-256 does not match the body: the webhook secret on GitHub and GITHUB_WEBHOOK_SECRET differ, or the body was altered"
            }
        }
    }
}

/// A well-formed `X-Hub-Signature-256`, parsed from the header alone so a
/// missing or malformed one is refused before the body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Signature([u8; 32]);

impl Signature {
    /// `sha256=` and 64 hex digits.
    pub(crate) fn parse(header: Option<&str>) -> Result<Self, SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let hex_digest = header
            .trim()
            .strip_prefix("sha256=")
            .filter(|h| h.len() == 64)
            .ok_or(SignatureError::Malformed)?;
        let mut digest = [0u8; 32];
        hex::decode_to_slice(hex_digest, &mut digest).map_err(|_| SignatureError::Malformed)?;
        Ok(Self(digest))
    }

    /// Whether this is the HMAC-SHA256 of `body` with `secret`, compared in
    /// constant time.
    pub(crate) fn verify(&self, secret: &[u8], body: &[u8]) -> Result<(), SignatureError> {
        self.verify_chunks(secret, &[body])
    }

    /// The same, over a body held in pieces.
    pub(crate) fn verify_chunks(
        &self,
        secret: &[u8],
        chunks: &[impl AsRef<[u8]>],
    ) -> Result<(), SignatureError> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
        for chunk in chunks {
            mac.update(chunk.as_ref());
        }
        mac.verify_slice(&self.0)
            .map_err(|_| SignatureError::Mismatch)
    }
}

pub(crate) fn verify(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    Signature::parse(header)?.verify(secret, body)
}

/// The header value GitHub would send for `body` (used by the CLI and tests).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example from GitHub's "Validating webhook deliveries" page.
    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const GITHUB_SIGNATURE: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn matches_githubs_documented_example() {
        assert_eq!(sign(SECRET, BODY), GITHUB_SIGNATURE);
        assert_eq!(verify(SECRET, BODY, Some(GITHUB_SIGNATURE)), Ok(()));
    }

    #[test]
    fn a_body_in_pieces_verifies_like_the_whole() {
        let signature = Signature::parse(Some(GITHUB_SIGNATURE)).unwrap();
        assert_eq!(
            signature.verify_chunks(SECRET, &[&b"Hello, "[..], b"", b"World!"]),
            Ok(())
        );
        assert_eq!(
            signature.verify_chunks(SECRET, &[&b"Hello, "[..], b"World?"]),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn refuses_missing_malformed_and_wrong_signatures() {
        assert_eq!(verify(SECRET, BODY, None), Err(SignatureError::Missing));
        assert_eq!(
            verify(SECRET, BODY, Some("sha1=abc")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(SECRET, BODY, Some("sha256=zz")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(SECRET, BODY, Some("sha256=abcd")),
            Err(SignatureError::Malformed)
        );
        let too_long = format!("{GITHUB_SIGNATURE}00");
        assert_eq!(
            verify(SECRET, BODY, Some(&too_long)),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(b"another secret", BODY, Some(GITHUB_SIGNATURE)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, b"Hello, World?", Some(GITHUB_SIGNATURE)),
            Err(SignatureError::Mismatch)
        );
    }
}
