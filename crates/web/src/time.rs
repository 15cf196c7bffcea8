//! Times as people read them: "3 min ago", with the exact UTC time on
//! hover.

use chrono::{DateTime, Utc};
use maud::{Markup, html};

/// `at` relative to `now` ("just now", "5 min ago", "2 h ago", "3 d ago"):
/// a minute at least, so a live page does not change every second.
pub fn ago(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds();
    match secs {
        i64::MIN..=59 => "just now".to_owned(),
        60..=3_599 => format!("{} min ago", secs / 60),
        3_600..=86_399 => format!("{} h ago", secs / 3_600),
        _ => format!("{} d ago", secs / 86_400),
    }
}

/// A `<time>` showing [`ago`], the exact time on hover.
pub fn when(at: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    let exact = at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    html! { time datetime=(at.to_rfc3339()) title=(exact) { (ago(at, now)) } }
}

/// A duration in seconds as "12.3 s" or "4 min 5 s".
pub fn took(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else {
        let whole = seconds.round() as i64;
        format!("{} min {} s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_people_say_them() {
        let now = DateTime::parse_from_rfc3339("2026-12-05T12:00:00Z")
            .unwrap()
            .to_utc();
        let before = |secs| now - chrono::Duration::seconds(secs);
        assert_eq!(ago(before(3), now), "just now");
        assert_eq!(ago(before(42), now), "just now");
        assert_eq!(ago(before(300), now), "5 min ago");
        assert_eq!(ago(before(7_300), now), "2 h ago");
        assert_eq!(ago(before(3 * 86_400), now), "3 d ago");
        // A clock a little ahead is still "just now".
        assert_eq!(ago(now + chrono::Duration::seconds(5), now), "just now");
        assert!(
            when(before(300), now)
                .into_string()
                .contains("title=\"2026-12-05 11:55:00 UTC\"")
        );
        assert_eq!(took(12.34), "12.3 s");
        assert_eq!(took(245.0), "4 min 5 s");
    }
}
