use crate::{Namespace, PrNumber, RepositoryFullName, ValidationError};

/// `EPHEMERA_PREVIEW_URL_TEMPLATE`: the preview's URL with `{namespace}`,
/// `{pr_number}`, `{repository}` (the name) and `{owner}` filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewUrlTemplate(String);

const PLACEHOLDERS: [&str; 4] = ["namespace", "pr_number", "repository", "owner"];

impl PreviewUrlTemplate {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let invalid = |reason: String| ValidationError::new("preview URL template", reason);
        if !(raw.starts_with("http://") || raw.starts_with("https://")) {
            return Err(invalid(format!(
                "`{raw}` must start with http:// or https://"
            )));
        }
        let mut rest = raw;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| invalid(format!("`{raw}` has an unclosed `{{`")))?;
            let name = &rest[open + 1..open + close];
            if !PLACEHOLDERS.contains(&name) {
                return Err(invalid(format!(
                    "`{{{name}}}` is not one of {{namespace}}, {{pr_number}}, {{repository}}, {{owner}}"
                )));
            }
            rest = &rest[open + close + 1..];
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn render(
        &self,
        namespace: &Namespace,
        repository: &RepositoryFullName,
        pr: PrNumber,
    ) -> String {
        self.0
            .replace("{namespace}", namespace.as_str())
            .replace("{pr_number}", &pr.to_string())
            .replace("{repository}", &repository.name().to_ascii_lowercase())
            .replace("{owner}", &repository.owner().to_ascii_lowercase())
    }
}

impl Default for PreviewUrlTemplate {
    fn default() -> Self {
        Self("http://{namespace}.preview.localhost".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_placeholder() {
        let repo = RepositoryFullName::parse("Octo/Web").unwrap();
        let pr = PrNumber::new(5).unwrap();
        let ns = Namespace::for_pr(&repo, pr);
        let t = PreviewUrlTemplate::parse(
            "https://{owner}-{repository}-{pr_number}.example.com/{namespace}",
        )
        .unwrap();
        assert_eq!(
            t.render(&ns, &repo, pr),
            format!("https://octo-web-5.example.com/{ns}")
        );
        assert_eq!(
            PreviewUrlTemplate::default().render(&ns, &repo, pr),
            format!("http://{ns}.preview.localhost")
        );
    }

    #[test]
    fn refuses_unknown_placeholders_and_non_http() {
        assert!(PreviewUrlTemplate::parse("https://{branch}.example.com").is_err());
        assert!(PreviewUrlTemplate::parse("https://{namespace.example.com").is_err());
        assert!(PreviewUrlTemplate::parse("ftp://x").is_err());
    }
}
