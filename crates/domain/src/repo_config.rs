//! Per-repository rules (`.github/ephemera.yml`): which PRs of a repository
//! get a preview, for how long, how many at once, and which plain variables
//! the provisioner receives — within the bounds the operator sets.
//!
//! A repository's file only *asks*: [`resolve`] starts from the operator's
//! defaults, applies what the file asks for where the bounds allow it, and
//! says where each value came from and what was refused.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use globset::{Glob, GlobSet, GlobSetBuilder};

crate::string_enum! {
    /// When a repository's PRs get previews.
    pub enum PreviewMode ("previews.mode") {
        /// Every PR the rules let through.
        Auto = "auto",
        /// Only on request (`/preview deploy`).
        Manual = "manual",
        /// Never.
        Off = "off",
    }
}

crate::string_enum! {
    /// The keys a repository file may set (the operator may allow fewer).
    pub enum ConfigKey ("configuration key") {
        Mode = "previews.mode",
        Branches = "previews.branches",
        PathsInclude = "previews.paths.include",
        PathsExclude = "previews.paths.exclude",
        SkipAuthors = "previews.skip_authors",
        SkipWhenTitleContains = "previews.skip_when_title_contains",
        Ttl = "previews.ttl",
        SleepAfter = "previews.sleep_after",
        MaxActive = "previews.max_active",
        Env = "env",
    }
}

crate::string_enum! {
    /// Where an effective value came from.
    pub enum ValueSource ("value source") {
        /// The operator's default (no file, or the file does not set it).
        Default = "default",
        /// The repository's file.
        File = "file",
        /// The file asked for more than the operator allows; the bound
        /// applies.
        Bound = "bound",
    }
}

/// What a repository's `.github/ephemera.yml` asks for; `None` = not set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoConfigFile {
    pub mode: Option<PreviewMode>,
    pub branches: Option<Vec<String>>,
    pub paths_include: Option<Vec<String>>,
    pub paths_exclude: Option<Vec<String>>,
    pub skip_authors: Option<Vec<String>>,
    pub skip_when_title_contains: Option<Vec<String>>,
    pub ttl: Option<Duration>,
    pub sleep_after: Option<Duration>,
    pub max_active: Option<u32>,
    pub env: BTreeMap<String, String>,
}

/// The rules that apply to a repository's PRs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRules {
    pub mode: PreviewMode,
    /// Base-branch globs; empty = every base branch.
    pub branches: Vec<String>,
    /// Changed-file globs of which at least one must match; empty = any.
    pub paths_include: Vec<String>,
    /// Changed files matching these do not count.
    pub paths_exclude: Vec<String>,
    /// PR authors whose PRs get no preview (case-insensitive).
    pub skip_authors: Vec<String>,
    /// A PR whose title contains one of these gets no preview
    /// (case-insensitive).
    pub skip_when_title_contains: Vec<String>,
    /// Destroy the preview after this long without PR activity.
    pub ttl: Option<Duration>,
    /// Put the preview to sleep after this long without activity.
    pub sleep_after: Option<Duration>,
    /// Live previews at once in the repository; more wait in line.
    pub max_active: Option<u32>,
    /// Plain variables handed to the provisioner.
    pub env: BTreeMap<String, String>,
}

impl Default for RepoRules {
    fn default() -> Self {
        Self {
            mode: PreviewMode::Auto,
            branches: Vec::new(),
            paths_include: Vec::new(),
            paths_exclude: Vec::new(),
            skip_authors: Vec::new(),
            skip_when_title_contains: Vec::new(),
            ttl: None,
            sleep_after: None,
            max_active: None,
            env: BTreeMap::new(),
        }
    }
}

/// Environment-variable names no repository may set: they steer the
/// provisioner's process or belong to ephemera.
const RESERVED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "SHELL",
    "USER",
    "IFS",
    "EPHEMERA_*",
    "GITHUB_*",
    "LD_*",
    "DYLD_*",
    "KUBECONFIG",
];

/// What the operator lets a repository file change, and how far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigBounds {
    /// The keys a file may set; others are refused.
    pub allowed_keys: Vec<ConfigKey>,
    /// The longest `previews.ttl` a file may ask for.
    pub max_ttl: Option<Duration>,
    /// The longest `previews.sleep_after` a file may ask for.
    pub max_sleep_after: Option<Duration>,
    /// The largest `previews.max_active` a file may ask for.
    pub max_active: Option<u32>,
    /// Globs over the variable names `env` may set (e.g. `PREVIEW_*`);
    /// reserved names are refused whatever this says.
    pub env_names: Vec<String>,
}

impl Default for ConfigBounds {
    fn default() -> Self {
        Self {
            allowed_keys: ConfigKey::ALL.to_vec(),
            max_ttl: None,
            max_sleep_after: None,
            max_active: None,
            env_names: vec!["*".to_owned()],
        }
    }
}

/// The rules for a repository, where each value came from, and what its
/// file asked for that the operator refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedConfig {
    pub rules: RepoRules,
    pub sources: BTreeMap<ConfigKey, ValueSource>,
    /// One line per refusal, for the PR comment.
    pub refused: Vec<String>,
}

/// The rules for a repository: the operator's `defaults`, then what `file`
/// asks for within `bounds`.
pub fn resolve(
    file: Option<&RepoConfigFile>,
    defaults: &RepoRules,
    bounds: &ConfigBounds,
) -> ResolvedConfig {
    let mut resolved = ResolvedConfig {
        rules: defaults.clone(),
        sources: ConfigKey::ALL
            .iter()
            .map(|k| (*k, ValueSource::Default))
            .collect(),
        refused: Vec::new(),
    };
    let Some(file) = file else {
        return resolved;
    };
    let take = |key: ConfigKey, set: bool, resolved: &mut ResolvedConfig| -> bool {
        if !set {
            return false;
        }
        if bounds.allowed_keys.contains(&key) {
            resolved.sources.insert(key, ValueSource::File);
            true
        } else {
            resolved
                .refused
                .push(format!("`{key}` is not one a repository may set here"));
            false
        }
    };
    let mut rules = resolved.rules.clone();
    if take(ConfigKey::Mode, file.mode.is_some(), &mut resolved) {
        rules.mode = file.mode.unwrap_or(rules.mode);
    }
    for (key, asked, into) in [
        (ConfigKey::Branches, &file.branches, &mut rules.branches),
        (
            ConfigKey::PathsInclude,
            &file.paths_include,
            &mut rules.paths_include,
        ),
        (
            ConfigKey::PathsExclude,
            &file.paths_exclude,
            &mut rules.paths_exclude,
        ),
        (
            ConfigKey::SkipAuthors,
            &file.skip_authors,
            &mut rules.skip_authors,
        ),
        (
            ConfigKey::SkipWhenTitleContains,
            &file.skip_when_title_contains,
            &mut rules.skip_when_title_contains,
        ),
    ] {
        if let Some(asked) = asked
            && take(key, true, &mut resolved)
        {
            into.clone_from(asked);
        }
    }
    for (key, asked, max, into) in [
        (ConfigKey::Ttl, file.ttl, bounds.max_ttl, &mut rules.ttl),
        (
            ConfigKey::SleepAfter,
            file.sleep_after,
            bounds.max_sleep_after,
            &mut rules.sleep_after,
        ),
    ] {
        if let Some(asked) = asked
            && take(key, true, &mut resolved)
        {
            *into = Some(match max {
                Some(max) if asked > max => {
                    resolved.sources.insert(key, ValueSource::Bound);
                    resolved.refused.push(format!(
                        "`{key}: {}` is longer than this server allows; {} applies",
                        format_duration(asked),
                        format_duration(max)
                    ));
                    max
                }
                _ => asked,
            });
        }
    }
    if take(
        ConfigKey::MaxActive,
        file.max_active.is_some(),
        &mut resolved,
    ) {
        let asked = file.max_active.unwrap_or_default();
        rules.max_active = Some(match bounds.max_active {
            Some(max) if asked > max => {
                resolved
                    .sources
                    .insert(ConfigKey::MaxActive, ValueSource::Bound);
                resolved.refused.push(format!(
                    "`previews.max_active: {asked}` is more than this server allows; {max} applies"
                ));
                max
            }
            _ => asked,
        });
    }
    if take(ConfigKey::Env, !file.env.is_empty(), &mut resolved) {
        let allowed = globs(&bounds.env_names, false);
        let reserved = globs(RESERVED_ENV, false);
        for (name, value) in &file.env {
            if reserved.is_match(name) {
                resolved
                    .refused
                    .push(format!("`env.{name}` is reserved and cannot be set"));
            } else if !allowed.is_match(name) {
                resolved.refused.push(format!(
                    "`env.{name}` is not a name this server lets repositories set"
                ));
            } else {
                rules.env.insert(name.clone(), value.clone());
            }
        }
    }
    resolved.rules = rules;
    resolved
}

/// What the rules need to know about a PR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrSubject<'a> {
    pub base_ref: &'a str,
    pub author: &'a str,
    pub title: &'a str,
    /// The files the PR changes; `None` when they could not all be listed
    /// (path rules then let the PR through).
    pub changed_files: Option<&'a [String]>,
    /// Someone with write permission asked for this commit's preview
    /// (`/preview deploy`): what `mode: manual` waits for.
    pub requested: bool,
}

/// Why the repository's rules give a PR no preview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleSkip {
    Off,
    Manual,
    Branch { base: String, globs: Vec<String> },
    Author { author: String },
    Title { phrase: String },
    NoPathMatches { include: Vec<String> },
    OnlyExcludedPaths { exclude: Vec<String> },
}

impl fmt::Display for RuleSkip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Off => f.write_str("previews.mode: off: this repository has no previews"),
            Self::Manual => f.write_str(
                "previews.mode: manual: a preview starts only when asked for (`/preview deploy`)",
            ),
            Self::Branch { base, globs } => write!(
                f,
                "previews.branches: base branch `{base}` matches none of {}",
                globs.join(", ")
            ),
            Self::Author { author } => write!(f, "previews.skip_authors: PR by `{author}`"),
            Self::Title { phrase } => write!(
                f,
                "previews.skip_when_title_contains: the title contains `{phrase}`"
            ),
            Self::NoPathMatches { include } => write!(
                f,
                "previews.paths: no changed file matches {}",
                include.join(", ")
            ),
            Self::OnlyExcludedPaths { exclude } => write!(
                f,
                "previews.paths: every changed file matches the excluded {}",
                exclude.join(", ")
            ),
        }
    }
}

/// A glob set; a glob that does not parse matches nothing (files are
/// checked when parsed, so this only guards the operator's settings).
fn globs<S: AsRef<str>>(patterns: &[S], literal_separator: bool) -> GlobSet {
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        if let Ok(glob) = globset::GlobBuilder::new(p.as_ref())
            .literal_separator(literal_separator)
            .build()
        {
            builder.add(glob);
        }
    }
    builder.build().unwrap_or_else(|_| GlobSet::empty())
}

/// Whether `pattern` is a glob the rules can use; the error says why not.
pub fn check_glob(pattern: &str) -> Result<(), String> {
    Glob::new(pattern).map(|_| ()).map_err(|e| e.to_string())
}

impl RepoRules {
    /// Whether the PR gets a preview under these rules; `Err` names the
    /// rule that decided against it.
    pub fn evaluate(&self, pr: &PrSubject<'_>) -> Result<(), RuleSkip> {
        match self.mode {
            PreviewMode::Off => return Err(RuleSkip::Off),
            PreviewMode::Manual if !pr.requested => return Err(RuleSkip::Manual),
            PreviewMode::Manual => {}
            PreviewMode::Auto => {}
        }
        // An unknown base branch (a row from before it was kept) is let through.
        if !self.branches.is_empty()
            && !pr.base_ref.is_empty()
            && !globs(&self.branches, true).is_match(pr.base_ref)
        {
            return Err(RuleSkip::Branch {
                base: pr.base_ref.to_owned(),
                globs: self.branches.clone(),
            });
        }
        if let Some(author) = self
            .skip_authors
            .iter()
            .find(|a| a.eq_ignore_ascii_case(pr.author))
        {
            return Err(RuleSkip::Author {
                author: author.clone(),
            });
        }
        let title = pr.title.to_lowercase();
        if let Some(phrase) = self
            .skip_when_title_contains
            .iter()
            .find(|p| !p.is_empty() && title.contains(&p.to_lowercase()))
        {
            return Err(RuleSkip::Title {
                phrase: phrase.clone(),
            });
        }
        self.check_paths(pr.changed_files)
    }

    /// Whether path rules are set (then the PR's files must be listed).
    pub fn needs_changed_files(&self) -> bool {
        !self.paths_include.is_empty() || !self.paths_exclude.is_empty()
    }

    fn check_paths(&self, changed: Option<&[String]>) -> Result<(), RuleSkip> {
        let Some(changed) = changed.filter(|_| self.needs_changed_files()) else {
            return Ok(());
        };
        let exclude = globs(&self.paths_exclude, true);
        let counted: Vec<&String> = changed.iter().filter(|f| !exclude.is_match(f)).collect();
        if counted.is_empty() && !self.paths_exclude.is_empty() && !changed.is_empty() {
            return Err(RuleSkip::OnlyExcludedPaths {
                exclude: self.paths_exclude.clone(),
            });
        }
        if !self.paths_include.is_empty() {
            let include = globs(&self.paths_include, true);
            if !counted.iter().any(|f| include.is_match(f)) {
                return Err(RuleSkip::NoPathMatches {
                    include: self.paths_include.clone(),
                });
            }
        }
        Ok(())
    }
}

/// `72h`, `3d`, `90m`: the largest whole unit.
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= size && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

/// How many previews may be live at once, and how many are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotUse {
    /// Live previews counted against the cap.
    pub in_use: u64,
    /// Previews already waiting ahead of this one.
    pub waiting_ahead: u64,
}

/// Whether a preview may start now under its caps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Start,
    /// "waiting: 5 of 5 previews in use, 2nd in line".
    Wait(String),
}

/// The decision for one preview that wants to start: the repository's cap
/// (`max_active`) and the installation's (`EPHEMERA_MAX_ACTIVE`), each
/// with what is in use and waiting in its scope. Whoever waits first starts
/// first: a preview waits while anyone is ahead of it.
pub fn admit(caps: &[(&str, Option<u32>, SlotUse)]) -> Admission {
    for (scope, cap, slots) in caps {
        let Some(cap) = cap else { continue };
        if slots.in_use >= u64::from(*cap) || slots.waiting_ahead > 0 {
            let place = slots.waiting_ahead + 1;
            return Admission::Wait(format!(
                "waiting: {} of {cap} previews in use in the {scope}, {} in line",
                slots.in_use.min(u64::from(*cap)),
                ordinal(place)
            ));
        }
    }
    Admission::Start
}

fn ordinal(n: u64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn pr<'a>(files: Option<&'a [String]>) -> PrSubject<'a> {
        PrSubject {
            base_ref: "main",
            author: "octocat",
            title: "Add a page",
            changed_files: files,
            requested: false,
        }
    }

    #[test]
    fn without_a_file_the_operators_defaults_apply() {
        let defaults = RepoRules {
            ttl: Some(Duration::from_secs(3600)),
            ..RepoRules::default()
        };
        let resolved = resolve(None, &defaults, &ConfigBounds::default());
        assert_eq!(resolved.rules, defaults);
        assert!(
            resolved
                .sources
                .values()
                .all(|s| *s == ValueSource::Default)
        );
        assert!(resolved.refused.is_empty());
    }

    #[test]
    fn a_file_is_cut_to_the_bounds_and_says_what_was_refused() {
        let file = RepoConfigFile {
            mode: Some(PreviewMode::Manual),
            ttl: Some(Duration::from_secs(30 * 86_400)),
            sleep_after: Some(Duration::from_secs(12 * 3600)),
            max_active: Some(50),
            env: BTreeMap::from([
                ("PREVIEW_FLAG".to_owned(), "on".to_owned()),
                ("LD_PRELOAD".to_owned(), "/x.so".to_owned()),
                ("DATABASE_URL".to_owned(), "x".to_owned()),
            ]),
            ..RepoConfigFile::default()
        };
        let bounds = ConfigBounds {
            allowed_keys: ConfigKey::ALL
                .into_iter()
                .filter(|k| *k != ConfigKey::Mode)
                .collect(),
            max_ttl: Some(Duration::from_secs(7 * 86_400)),
            max_sleep_after: Some(Duration::from_secs(2 * 3600)),
            max_active: Some(5),
            env_names: strings(&["PREVIEW_*"]),
        };
        let resolved = resolve(Some(&file), &RepoRules::default(), &bounds);
        assert_eq!(resolved.rules.mode, PreviewMode::Auto);
        assert_eq!(resolved.rules.ttl, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(
            resolved.rules.sleep_after,
            Some(Duration::from_secs(2 * 3600))
        );
        assert_eq!(resolved.rules.max_active, Some(5));
        assert_eq!(
            resolved.rules.env,
            BTreeMap::from([("PREVIEW_FLAG".to_owned(), "on".to_owned())])
        );
        assert_eq!(resolved.sources[&ConfigKey::Mode], ValueSource::Default);
        assert_eq!(resolved.sources[&ConfigKey::Ttl], ValueSource::Bound);
        assert_eq!(resolved.sources[&ConfigKey::Env], ValueSource::File);
        assert_eq!(
            resolved.refused,
            strings(&[
                "`previews.mode` is not one a repository may set here",
                "`previews.ttl: 30d` is longer than this server allows; 7d applies",
                "`previews.sleep_after: 12h` is longer than this server allows; 2h applies",
                "`previews.max_active: 50` is more than this server allows; 5 applies",
                "`env.DATABASE_URL` is not a name this server lets repositories set",
                "`env.LD_PRELOAD` is reserved and cannot be set",
            ])
        );
    }

    #[test]
    fn each_rule_names_itself_when_it_skips() {
        let files = strings(&["docs/readme.md"]);
        let rules = RepoRules {
            branches: strings(&["main", "release/*"]),
            skip_authors: strings(&["dependabot[bot]"]),
            skip_when_title_contains: strings(&["[skip preview]"]),
            paths_include: strings(&["web/**"]),
            ..RepoRules::default()
        };
        let cases: Vec<(PrSubject<'_>, Option<&str>)> = vec![
            (
                PrSubject {
                    changed_files: Some(&files),
                    ..pr(None)
                },
                Some("previews.paths: no changed file matches web/**"),
            ),
            (
                PrSubject {
                    base_ref: "develop",
                    ..pr(None)
                },
                Some("previews.branches: base branch `develop` matches none of main, release/*"),
            ),
            (
                PrSubject {
                    base_ref: "release/1.2",
                    ..pr(None)
                },
                None,
            ),
            (
                PrSubject {
                    base_ref: "release/1.2/hotfix",
                    ..pr(None)
                },
                Some(
                    "previews.branches: base branch `release/1.2/hotfix` matches none of main, release/*",
                ),
            ),
            (
                PrSubject {
                    author: "Dependabot[bot]",
                    ..pr(None)
                },
                Some("previews.skip_authors: PR by `dependabot[bot]`"),
            ),
            (
                PrSubject {
                    title: "Bump x [Skip Preview]",
                    ..pr(None)
                },
                Some("previews.skip_when_title_contains: the title contains `[skip preview]`"),
            ),
        ];
        for (subject, expected) in cases {
            let got = rules.evaluate(&subject).err().map(|e| e.to_string());
            assert_eq!(got.as_deref(), expected, "{subject:?}");
        }
        let off = RepoRules {
            mode: PreviewMode::Off,
            ..RepoRules::default()
        };
        assert_eq!(off.evaluate(&pr(None)), Err(RuleSkip::Off));
        let manual = RepoRules {
            mode: PreviewMode::Manual,
            ..RepoRules::default()
        };
        assert_eq!(manual.evaluate(&pr(None)), Err(RuleSkip::Manual));
        let asked = PrSubject {
            requested: true,
            ..pr(None)
        };
        assert_eq!(manual.evaluate(&asked), Ok(()), "/preview deploy");
    }

    #[test]
    fn path_rules_look_at_every_changed_file_and_let_unknown_lists_through() {
        let rules = RepoRules {
            paths_include: strings(&["web/**"]),
            paths_exclude: strings(&["**/*.md"]),
            ..RepoRules::default()
        };
        let docs_only = strings(&["web/README.md", "docs/a.md"]);
        assert_eq!(
            rules
                .evaluate(&pr(Some(&docs_only)))
                .unwrap_err()
                .to_string(),
            "previews.paths: every changed file matches the excluded **/*.md"
        );
        let web = strings(&["docs/a.md", "web/src/app.ts"]);
        assert_eq!(rules.evaluate(&pr(Some(&web))), Ok(()));
        let elsewhere = strings(&["api/main.rs"]);
        assert!(matches!(
            rules.evaluate(&pr(Some(&elsewhere))),
            Err(RuleSkip::NoPathMatches { .. })
        ));
        // A listing GitHub cut short: the PR may touch web/, so it is let
        // through rather than silently skipped.
        assert_eq!(rules.evaluate(&pr(None)), Ok(()));
        assert!(rules.needs_changed_files());
        assert!(!RepoRules::default().needs_changed_files());
    }

    #[test]
    fn caps_queue_in_order_and_name_the_place_in_line() {
        let free = SlotUse {
            in_use: 2,
            waiting_ahead: 0,
        };
        assert_eq!(admit(&[("repository", Some(5), free)]), Admission::Start);
        assert_eq!(admit(&[("repository", None, free)]), Admission::Start);
        let full = SlotUse {
            in_use: 5,
            waiting_ahead: 1,
        };
        assert_eq!(
            admit(&[("repository", Some(5), full)]),
            Admission::Wait(
                "waiting: 5 of 5 previews in use in the repository, 2nd in line".into()
            )
        );
        // A free slot does not let a newcomer jump the line.
        let queue = SlotUse {
            in_use: 4,
            waiting_ahead: 2,
        };
        assert_eq!(
            admit(&[
                ("repository", Some(5), free),
                ("installation", Some(5), queue)
            ]),
            Admission::Wait(
                "waiting: 4 of 5 previews in use in the installation, 3rd in line".into()
            )
        );
        assert_eq!(ordinal(11), "11th");
        assert_eq!(ordinal(21), "21st");
    }

    #[test]
    fn durations_read_back_in_their_largest_unit() {
        assert_eq!(format_duration(Duration::from_secs(72 * 3600)), "3d");
        assert_eq!(format_duration(Duration::from_secs(90 * 60)), "90m");
        assert_eq!(format_duration(Duration::from_secs(61)), "61s");
    }
}
