//! Which preview URLs a provisioner may report. A reported URL ends up in
//! the PR comment, the commit status and the GitHub Deployment, so a URL
//! that PR code managed to produce must not get there unchecked.
//!
//! A URL passes when it is `http(s)` without user info and either its host
//! is the host `EPHEMERA_PREVIEW_URL_TEMPLATE` renders for the environment,
//! or it matches the operator's `EPHEMERA_PREVIEW_URL_PATTERN`. URLs are
//! read with the WHATWG parser browsers use (`url`), so what is checked is
//! what a reader's browser would open.

use url::Url;

/// Longest URL accepted; a preview URL is short.
const MAX_URL_LEN: usize = 2048;

/// `EPHEMERA_PREVIEW_URL_PATTERN`, e.g. `https://*.preview.example.com/*`:
/// a literal `http` or `https` scheme, a host whose `*` stands for part of
/// one DNS label (never a dot), an optional port (`*` for any) and an
/// optional path whose `*` stands for anything. Without a path any path
/// matches; without a port only the scheme's default port does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewUrlPattern {
    raw: String,
    scheme: String,
    host_labels: Vec<String>,
    port: PortPattern,
    path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Default,
    Any,
    Exactly(u16),
}

impl PreviewUrlPattern {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let invalid = |why: &str| {
            format!("`{raw}` is not a URL pattern like https://*.preview.example.com/*: {why}")
        };
        let (scheme, rest) = raw.split_once("://").ok_or_else(|| invalid("no scheme"))?;
        if !matches!(scheme, "http" | "https") {
            return Err(invalid("the scheme must be http or https"));
        }
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], Some(&rest[slash..])),
            None => (rest, None),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, "*")) => (host, PortPattern::Any),
            Some((host, port)) => (
                host,
                PortPattern::Exactly(port.parse().map_err(|_| invalid("bad port"))?),
            ),
            None => (authority, PortPattern::Default),
        };
        let host = host.to_ascii_lowercase();
        let host_labels: Vec<String> = host.split('.').map(str::to_owned).collect();
        let label_ok = |label: &String| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
        };
        if !host_labels.iter().all(label_ok) {
            return Err(invalid(
                "the host may hold only letters, digits, `-`, `*` and dots between labels",
            ));
        }
        // `*.com` or `*` would let any site through.
        let literal_labels = host_labels.iter().filter(|l| !l.contains('*')).count();
        if literal_labels < 2 {
            return Err(invalid("the host needs at least two labels without `*`"));
        }
        if path.is_some_and(|p| p.contains(['?', '#'])) {
            return Err(invalid("a pattern has no query or fragment"));
        }
        Ok(Self {
            raw: raw.to_owned(),
            scheme: scheme.to_owned(),
            host_labels,
            port,
            path: path.map(str::to_owned),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    fn matches(&self, url: &Url) -> bool {
        let Some(host) = url.domain() else {
            return false;
        };
        let labels: Vec<&str> = host.split('.').collect();
        let host_ok = labels.len() == self.host_labels.len()
            && labels
                .iter()
                .zip(&self.host_labels)
                .all(|(label, pattern)| glob(pattern, label));
        let port_ok = match self.port {
            PortPattern::Default => url.port().is_none(),
            PortPattern::Any => true,
            PortPattern::Exactly(port) => url.port_or_known_default() == Some(port),
        };
        let path_ok = self.path.as_deref().is_none_or(|p| glob(p, url.path()));
        url.scheme() == self.scheme && host_ok && port_ok && path_ok
    }
}

/// Why a reported URL was refused; says nothing of the URL itself, which
/// may be attacker-chosen text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// The URL to record for a reported `candidate`, or why it is refused.
/// `templated` is what `EPHEMERA_PREVIEW_URL_TEMPLATE` renders for this
/// environment.
pub fn check(
    candidate: &str,
    templated: &str,
    pattern: Option<&PreviewUrlPattern>,
) -> Result<String, Refused> {
    if candidate.len() > MAX_URL_LEN {
        return Err(Refused(format!("longer than {MAX_URL_LEN} characters")));
    }
    if candidate
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(Refused("holds spaces or control characters".to_owned()));
    }
    let url = Url::parse(candidate).map_err(|e| Refused(format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Refused("not an http(s) URL".to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refused("carries user info (`…@`)".to_owned()));
    }
    let templated_host = Url::parse(templated)
        .ok()
        .and_then(|t| t.host_str().map(str::to_owned));
    let same_host = url.host_str().is_some() && url.host_str() == templated_host.as_deref();
    if same_host || pattern.is_some_and(|p| p.matches(&url)) {
        return Ok(url.into());
    }
    let host = templated_host.unwrap_or_default();
    Err(Refused(match pattern {
        None => format!(
            "its host is not `{host}` (EPHEMERA_PREVIEW_URL_TEMPLATE); \
             set EPHEMERA_PREVIEW_URL_PATTERN to allow other hosts"
        ),
        Some(p) => format!(
            "its host is not `{host}` (EPHEMERA_PREVIEW_URL_TEMPLATE) and it does not match \
             EPHEMERA_PREVIEW_URL_PATTERN `{}`",
            p.as_str()
        ),
    }))
}

/// `*` matches any run of characters (none too); everything else itself.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and where the text stood when it was met.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATED: &str = "https://pr-7-web-abc.preview.example.com";

    fn pattern(raw: &str) -> PreviewUrlPattern {
        PreviewUrlPattern::parse(raw).unwrap()
    }

    #[test]
    fn the_templated_host_passes_with_any_path() {
        assert_eq!(
            check(
                "https://pr-7-web-abc.preview.example.com/app?x=1",
                TEMPLATED,
                None
            ),
            Ok("https://pr-7-web-abc.preview.example.com/app?x=1".to_owned())
        );
        assert!(check("http://PR-7-web-abc.preview.example.com", TEMPLATED, None).is_ok());
    }

    #[test]
    fn other_hosts_and_tricks_are_refused_without_a_pattern() {
        for bad in [
            "https://evil.example",
            "https://pr-7-web-abc.preview.example.com@evil.example/",
            "https://evil.example\\.pr-7-web-abc.preview.example.com/",
            "https://evil.example#.pr-7-web-abc.preview.example.com",
            "javascript:alert(1)//pr-7-web-abc.preview.example.com",
            "ftp://pr-7-web-abc.preview.example.com/",
            "https://pr-7-web-abc.preview.example.com/ [click](https://evil.example)",
            "not a url",
            "",
        ] {
            assert!(check(bad, TEMPLATED, None).is_err(), "{bad:?}");
        }
        let refused = check("https://evil.example", TEMPLATED, None).unwrap_err();
        assert!(!refused.0.contains("evil"), "{}", refused.0);
    }

    #[test]
    fn a_pattern_allows_more_hosts() {
        let p = pattern("https://*.preview.example.com/*");
        for good in [
            "https://pr-7.preview.example.com/",
            "https://pr-7.preview.example.com",
            "https://anything-else.preview.example.com/a/b?c#d",
        ] {
            assert!(check(good, TEMPLATED, Some(&p)).is_ok(), "{good}");
        }
        for bad in [
            "http://pr-7.preview.example.com/",
            "https://a.b.preview.example.com/",
            "https://preview.example.com/",
            "https://evil.example/x.preview.example.com/",
            "https://pr-7.preview.example.com.evil.example/",
            "https://pr-7.preview.example.com:8443/",
        ] {
            assert!(check(bad, TEMPLATED, Some(&p)).is_err(), "{bad}");
        }
        let p = pattern("http://pr-*.apps.internal:*/preview/*");
        assert!(
            check(
                "http://pr-7.apps.internal:8080/preview/x",
                TEMPLATED,
                Some(&p)
            )
            .is_ok()
        );
        assert!(check("http://pr-7.apps.internal/other", TEMPLATED, Some(&p)).is_err());
    }

    #[test]
    fn patterns_that_would_allow_any_site_are_refused() {
        for bad in [
            "*.example.com",
            "ftp://*.example.com",
            "https://*",
            "https://*.com/*",
            "https://*.*/*",
            "https://a..example.com",
            "https://exa_mple.com",
            "https://x.example.com:port",
            "https://x.example.com/?q",
        ] {
            assert!(PreviewUrlPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn glob_matches_runs() {
        assert!(glob("*", ""));
        assert!(glob("a*c", "abbbc"));
        assert!(glob("/*", "/a/b"));
        assert!(glob("pr-*", "pr-"));
        assert!(!glob("a*c", "abbb"));
        assert!(!glob("abc", "abcd"));
    }
}
