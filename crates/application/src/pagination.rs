//! Keyset pagination: pages are cut by the last id seen, never by OFFSET, so
//! a page deep in the chain costs the same as the first.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use thiserror::Error;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// Position after which the next page starts, opaque to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Lists run newest first, so the next page holds ids below this one.
    pub before_id: i64,
}

/// A cursor is 8 bytes (an unsigned position, big-endian) in unpadded
/// base64url: always 11 characters. Every such string is a position, so
/// the API description can state the format exactly and the server accepts
/// all it states; one past every id (or 0) is simply an empty page.
const CURSOR_BYTES: usize = 8;

impl Cursor {
    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(self.before_id.max(0).cast_unsigned().to_be_bytes())
    }

    pub fn decode(raw: &str) -> Result<Self, PageError> {
        let bytes: [u8; CURSOR_BYTES] = URL_SAFE_NO_PAD
            .decode(raw)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(PageError::InvalidCursor)?;
        // Positions past the largest id mean "from the start".
        let before_id = i64::try_from(u64::from_be_bytes(bytes)).unwrap_or(i64::MAX);
        Ok(Self { before_id })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PageError {
    #[error("limit must be between 1 and {MAX_LIMIT}, got {0}")]
    InvalidLimit(u32),
    #[error("cursor is not one this API handed out; start again without it")]
    InvalidCursor,
}

/// A validated request for one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<Cursor>,
}

impl PageRequest {
    pub fn parse(limit: Option<u32>, cursor: Option<&str>) -> Result<Self, PageError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(PageError::InvalidLimit(limit));
        }
        let after = cursor.map(Cursor::decode).transpose()?;
        Ok(Self { limit, after })
    }

    /// How many rows to ask the store for: one extra tells whether a next
    /// page exists without a COUNT.
    pub fn fetch_limit(self) -> u64 {
        u64::from(self.limit) + 1
    }

    /// Cuts what the store returned (up to `fetch_limit` rows, newest first)
    /// into a page.
    pub fn into_page<T>(self, mut rows: Vec<T>, id_of: impl Fn(&T) -> i64) -> Page<T> {
        let limit = self.limit as usize;
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|last| Cursor {
                before_id: id_of(last),
            })
        } else {
            None
        };
        Page { items: rows, next }
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            after: None,
        }
    }
}

/// One page of a list, and where the next one starts if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_is_opaque() {
        let cursor = Cursor { before_id: 1234 };
        let encoded = cursor.encode();
        assert!(!encoded.contains("1234"));
        assert_eq!(Cursor::decode(&encoded), Ok(cursor));
    }

    #[test]
    fn forged_cursors_are_refused() {
        for raw in [
            "",
            "!!",
            "MTIz",
            // A cursor of the first format, base64 of `v1:<id>`.
            &URL_SAFE_NO_PAD.encode("v1:5"),
            // Seven and nine bytes.
            "AAAAAAAAAA",
            "AAAAAAAAAAAA",
            // Eight bytes, but not in canonical form (trailing bits set).
            "AAAAAAAAAAB",
            "AAAAAAAAAA=",
            "AAAAAAAAA+A",
        ] {
            assert_eq!(Cursor::decode(raw), Err(PageError::InvalidCursor), "{raw}");
        }
    }

    #[test]
    fn every_eight_byte_cursor_is_a_position() {
        // Zero: nothing lies below it, the page is empty.
        assert_eq!(Cursor::decode("AAAAAAAAAAA"), Ok(Cursor { before_id: 0 }));
        // Past every id: from the start.
        assert_eq!(
            Cursor::decode("__________8"),
            Ok(Cursor {
                before_id: i64::MAX
            })
        );
    }

    #[test]
    fn limit_defaults_to_50_and_is_capped_at_200() {
        assert_eq!(PageRequest::parse(None, None).unwrap().limit, 50);
        assert_eq!(PageRequest::parse(Some(200), None).unwrap().limit, 200);
        assert_eq!(
            PageRequest::parse(Some(201), None),
            Err(PageError::InvalidLimit(201))
        );
        assert_eq!(
            PageRequest::parse(Some(0), None),
            Err(PageError::InvalidLimit(0))
        );
    }

    #[test]
    fn a_full_page_points_at_the_next() {
        let request = PageRequest::parse(Some(2), None).unwrap();
        let page = request.into_page(vec![9, 8, 7], |id| *id);
        assert_eq!(page.items, vec![9, 8]);
        assert_eq!(page.next, Some(Cursor { before_id: 8 }));

        let last = request.into_page(vec![6, 5], |id| *id);
        assert_eq!(last.next, None);
    }
}
