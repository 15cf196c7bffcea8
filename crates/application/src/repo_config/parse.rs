//! `.github/ephemera.yml` as text → what it asks for, or an error that
//! names the line and column. Unknown keys and wrong types are errors: a
//! typo must not silently change nothing.

use std::collections::BTreeMap;
use std::fmt;

use ephemera_domain::{PreviewMode, RepoConfigFile, check_glob};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// Why a repository's file was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFileError {
    /// 1-based, when the parser knows where.
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                write!(f, "line {line}, column {column}: {}", self.message)
            }
            _ => f.write_str(&self.message),
        }
    }
}

impl ConfigFileError {
    fn whole_file(message: impl Into<String>) -> Self {
        Self {
            line: None,
            column: None,
            message: message.into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBody {
    version: u32,
    #[serde(default)]
    previews: Option<PreviewsBody>,
    #[serde(default)]
    env: Option<BTreeMap<String, EnvValue>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewsBody {
    mode: Option<ModeBody>,
    branches: Option<Vec<Text>>,
    paths: Option<PathsBody>,
    skip_authors: Option<Vec<Text>>,
    skip_when_title_contains: Option<Vec<Text>>,
    ttl: Option<Text>,
    sleep_after: Option<Text>,
    max_active: Option<u32>,
}

/// A value the file wrote as a string. YAML would read `2024` or `true`
/// into a string field without a word; the schema says string, so the
/// parser does too (quote it: `'2024'`).
struct Text(String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Only;
        impl Visitor<'_> for Only {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
                Ok(Text(v.to_owned()))
            }
        }
        deserializer.deserialize_any(Only)
    }
}

fn texts(list: Option<Vec<Text>>) -> Option<Vec<String>> {
    list.map(|l| l.into_iter().map(|t| t.0).collect())
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum ModeBody {
    Auto,
    Manual,
    Off,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PathsBody {
    include: Option<Vec<Text>>,
    exclude: Option<Vec<Text>>,
}

/// A plain value: YAML writes `3` and `true` without quotes, and a
/// variable's value is text either way.
#[derive(Deserialize)]
#[serde(untagged)]
enum EnvValue {
    Text(String),
    Number(serde_yaml_ng::Number),
    Flag(bool),
}

impl EnvValue {
    fn into_text(self) -> String {
        match self {
            Self::Text(t) => t,
            Self::Number(n) => n.to_string(),
            Self::Flag(b) => b.to_string(),
        }
    }
}

/// The most a variable name or value may hold.
const MAX_ENV_NAME: usize = 128;
const MAX_ENV_VALUE: usize = 4096;

/// Parses the file's text.
pub fn parse(text: &str) -> Result<RepoConfigFile, ConfigFileError> {
    let body: FileBody = serde_yaml_ng::from_str(text).map_err(|e| {
        let location = e.location();
        let mut message = e.to_string();
        if let Some(at) = message.find(" at line ") {
            message.truncate(at);
        }
        ConfigFileError {
            line: location.as_ref().map(|l| l.line()),
            column: location.as_ref().map(|l| l.column()),
            message,
        }
    })?;
    if body.version != 1 {
        return Err(ConfigFileError::whole_file(format!(
            "version: {} is not supported; this server reads version: 1",
            body.version
        )));
    }
    let mut file = RepoConfigFile::default();
    if let Some(p) = body.previews {
        file.mode = p.mode.map(|m| match m {
            ModeBody::Auto => PreviewMode::Auto,
            ModeBody::Manual => PreviewMode::Manual,
            ModeBody::Off => PreviewMode::Off,
        });
        let branches = texts(p.branches);
        let (include, exclude) = p
            .paths
            .map_or((None, None), |x| (texts(x.include), texts(x.exclude)));
        for (key, globs) in [
            ("previews.branches", &branches),
            ("previews.paths.include", &include),
            ("previews.paths.exclude", &exclude),
        ] {
            for glob in globs.iter().flatten() {
                check_glob(glob).map_err(|e| {
                    ConfigFileError::whole_file(format!("{key}: `{glob}` is not a glob: {e}"))
                })?;
            }
        }
        file.branches = branches;
        file.paths_include = include;
        file.paths_exclude = exclude;
        file.skip_authors = texts(p.skip_authors);
        file.skip_when_title_contains = texts(p.skip_when_title_contains);
        file.ttl = duration("previews.ttl", p.ttl)?;
        file.sleep_after = duration("previews.sleep_after", p.sleep_after)?;
        if p.max_active == Some(0) {
            return Err(ConfigFileError::whole_file(
                "previews.max_active: 0 would allow no preview; use `mode: off` for that",
            ));
        }
        file.max_active = p.max_active;
    }
    for (name, value) in body.env.unwrap_or_default() {
        let valid = !name.is_empty()
            && name.len() <= MAX_ENV_NAME
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(ConfigFileError::whole_file(format!(
                "env: `{name}` is not a variable name (letters, digits and _, not starting with a digit)"
            )));
        }
        let value = value.into_text();
        if value.len() > MAX_ENV_VALUE {
            return Err(ConfigFileError::whole_file(format!(
                "env.{name}: the value is longer than {MAX_ENV_VALUE} bytes"
            )));
        }
        file.env.insert(name, value);
    }
    Ok(file)
}

/// A duration such as `72h` or `7d`, more than zero.
fn duration(key: &str, raw: Option<Text>) -> Result<Option<std::time::Duration>, ConfigFileError> {
    raw.map(|Text(raw)| {
        humantime::parse_duration(raw.trim())
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                ConfigFileError::whole_file(format!(
                    "{key}: `{raw}` is not a duration such as 72h or 7d"
                ))
            })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn every_key_is_read() {
        let file = parse(
            "version: 1\n\
             previews:\n  mode: manual\n  branches: [main, 'release/*']\n\
             \x20 paths:\n    include: ['web/**']\n    exclude: ['**/*.md']\n\
             \x20 skip_authors: ['dependabot[bot]']\n\
             \x20 skip_when_title_contains: ['[skip preview]']\n\
             \x20 ttl: 3d\n  sleep_after: 2h\n  max_active: 4\n\
             env:\n  PREVIEW_FLAG: on\n  REPLICAS: 2\n  DEBUG: true\n",
        )
        .unwrap();
        assert_eq!(file.mode, Some(PreviewMode::Manual));
        assert_eq!(file.branches, Some(vec!["main".into(), "release/*".into()]));
        assert_eq!(file.paths_include, Some(vec!["web/**".into()]));
        assert_eq!(file.paths_exclude, Some(vec!["**/*.md".into()]));
        assert_eq!(file.skip_authors, Some(vec!["dependabot[bot]".into()]));
        assert_eq!(file.ttl, Some(Duration::from_secs(3 * 86_400)));
        assert_eq!(file.sleep_after, Some(Duration::from_secs(2 * 3600)));
        assert_eq!(file.max_active, Some(4));
        assert_eq!(file.env["PREVIEW_FLAG"], "on");
        assert_eq!(file.env["REPLICAS"], "2");
        assert_eq!(file.env["DEBUG"], "true");
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let unknown = parse("version: 1\npreviews:\n  mdoe: off\n").unwrap_err();
        assert_eq!((unknown.line, unknown.column), (Some(3), Some(3)));
        assert!(
            unknown.message.contains("unknown field `mdoe`"),
            "{unknown}"
        );
        assert!(
            unknown.to_string().starts_with("line 3, column 3: "),
            "{unknown}"
        );

        let wrong_type = parse("version: 1\npreviews:\n  max_active: many\n").unwrap_err();
        assert_eq!(wrong_type.line, Some(3));
        let broken = parse("version: 1\npreviews: [\n").unwrap_err();
        assert!(broken.line.is_some(), "{broken}");
        assert!(
            parse("previews: {}\n")
                .unwrap_err()
                .message
                .contains("version")
        );
    }

    #[test]
    fn numbers_and_flags_are_not_taken_for_strings() {
        let err =
            parse("version: 1\npreviews:\n  skip_when_title_contains: [WIP, 2024]\n").unwrap_err();
        assert!(err.to_string().contains("expected a string"), "{err}");
        assert_eq!(err.line, Some(3));
        let quoted =
            parse("version: 1\npreviews:\n  skip_when_title_contains: [WIP, '2024']\n").unwrap();
        assert_eq!(
            quoted.skip_when_title_contains,
            Some(vec!["WIP".into(), "2024".into()])
        );
        assert!(parse("version: 1\npreviews:\n  branches: [true]\n").is_err());
    }

    #[test]
    fn values_are_checked_beyond_their_types() {
        for (text, says) in [
            ("version: 2\n", "version: 2 is not supported"),
            (
                "version: 1\npreviews:\n  ttl: soon\n",
                "previews.ttl: `soon`",
            ),
            (
                "version: 1\npreviews:\n  max_active: 0\n",
                "previews.max_active: 0",
            ),
            (
                "version: 1\npreviews:\n  branches: ['a[']\n",
                "previews.branches: `a[`",
            ),
            (
                "version: 1\nenv:\n  1ST: x\n",
                "env: `1ST` is not a variable name",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.to_string().contains(says), "{text}: {err}");
        }
    }
}
