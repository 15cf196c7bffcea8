//! What a repository holds and what a PR changes, as the per-repository
//! configuration needs them: one file at a ref (the contents API, read
//! conditionally from a small cache of ETags) and the paths a PR touches.

use std::collections::{HashMap, VecDeque};

use base64::Engine as _;
use ephemera_application::ports::{
    ChangedFiles, FileLookup, PullRequestRef, ReportError, RepositoryFile,
};
use ephemera_domain::{InstallationId, RepositoryFullName};
use serde::Deserialize;

use crate::{GitHubApp, classify, owner_repo, transport};

/// Files kept with their ETag: plenty for the configuration files of the
/// repositories one worker serves, small enough not to matter.
const CACHED_FILES: usize = 256;

/// Pages of 100 changed files read at most: GitHub lists no more than
/// 3,000 files of a PR.
const MAX_FILE_PAGES: u32 = 30;

/// What the contents API last answered for a request path, with its ETag,
/// so the next read can be a conditional one (a `304` does not count
/// against the rate limit). The oldest entry goes first when it is full.
#[derive(Default)]
pub(crate) struct FileCache {
    entries: HashMap<String, (String, FileLookup)>,
    order: VecDeque<String>,
}

impl FileCache {
    /// The ETag and what the cached answer says under `max_bytes`, when
    /// it can say: a file once too large for a higher limit was never
    /// read, so it cannot answer a lower one.
    fn lookup(&self, key: &str, max_bytes: u64) -> Option<(String, FileLookup)> {
        let (etag, found) = self.entries.get(key)?;
        let found = match found {
            FileLookup::Found(file) if file.text.len() as u64 > max_bytes => FileLookup::TooLarge {
                size: file.text.len() as u64,
            },
            FileLookup::TooLarge { size } if *size <= max_bytes => return None,
            other => other.clone(),
        };
        Some((etag.clone(), found))
    }

    fn keep(&mut self, key: String, etag: String, found: FileLookup) {
        if self.entries.insert(key.clone(), (etag, found)).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > CACHED_FILES {
            if let Some(oldest) = self.order.pop_front() {
                self.entries.remove(&oldest);
            }
        }
    }
}

/// The contents API's answer: a directory's entries, or one entry (a
/// file, a symlink that does not lead to a file, a submodule).
#[derive(Deserialize)]
#[serde(untagged)]
enum ContentBody {
    // Only that the answer is a list matters, not what it lists.
    Directory(#[allow(dead_code)] Vec<serde::de::IgnoredAny>),
    Entry(ContentEntry),
}

#[derive(Deserialize)]
struct ContentEntry {
    #[serde(rename = "type")]
    kind: String,
    size: u64,
    sha: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
}

impl ContentEntry {
    fn into_lookup(self, max_bytes: u64, what: &str) -> Result<FileLookup, ReportError> {
        if self.kind != "file" {
            return Ok(FileLookup::Missing);
        }
        if self.size > max_bytes {
            return Ok(FileLookup::TooLarge { size: self.size });
        }
        match self.encoding.as_deref() {
            Some("base64") => {}
            // Over 1 MB GitHub leaves the content out of this media type.
            Some("none") => return Ok(FileLookup::TooLarge { size: self.size }),
            other => {
                return Err(ReportError::Refused(format!(
                    "{what}: GitHub sent the content encoded as {other:?}, not base64"
                )));
            }
        }
        // GitHub wraps the base64 text in lines of 60 characters.
        let packed: Vec<u8> = self
            .content
            .unwrap_or_default()
            .into_bytes()
            .into_iter()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(packed)
            .map_err(|e| ReportError::Refused(format!("{what}: the content is not base64: {e}")))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            ReportError::Refused(format!(
                "{what}: the file is not UTF-8 text (invalid byte at {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        Ok(FileLookup::Found(RepositoryFile {
            blob_sha: self.sha,
            text,
        }))
    }
}

#[derive(Deserialize)]
struct DiffEntry {
    filename: String,
    /// Set on renames: the path the file had before.
    #[serde(default)]
    previous_filename: Option<String>,
}

/// `segment` percent-encoded but for RFC 3986's unreserved characters, so
/// that a path segment or query value arrives as it was written.
pub(crate) fn encoded(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn poisoned() -> ReportError {
    ReportError::Retry {
        message: "file cache poisoned".into(),
        after: None,
    }
}

impl GitHubApp {
    pub(crate) async fn read_file(
        &self,
        installation: InstallationId,
        repository: &RepositoryFullName,
        path: &str,
        git_ref: &str,
        max_bytes: u64,
    ) -> Result<FileLookup, ReportError> {
        let client = self.client(installation)?;
        // The path's `/`s stay: GitHub takes it as segments.
        let segments: Vec<String> = path.trim_matches('/').split('/').map(encoded).collect();
        let mut url = format!(
            "/repos/{}/{}/contents/{}",
            repository.owner(),
            repository.name(),
            segments.join("/"),
        );
        // Without `ref`, GitHub reads the repository's default branch.
        let at = if git_ref.is_empty() {
            "the default branch"
        } else {
            url.push_str(&format!("?ref={}", encoded(git_ref)));
            git_ref
        };
        let what = format!("reading {path} at {at} of {repository}");
        let cached = self
            .files
            .lock()
            .map_err(|_| poisoned())?
            .lookup(&url, max_bytes);
        let answer = transport::get_unless_unchanged::<ContentBody>(
            &client,
            "repos/get-content",
            url.clone(),
            cached.as_ref().map(|(etag, _)| etag.as_str()),
        )
        .await;
        let (body, headers) = match answer {
            Ok(Some(answer)) => answer,
            Ok(None) => {
                return cached
                    .map(|(_, found)| found)
                    .ok_or_else(|| ReportError::Retry {
                        message: format!("{what}: 304 Not Modified to an unconditional request"),
                        after: None,
                    });
            }
            Err(octocrab::Error::GitHub { source, .. }) if source.status_code.as_u16() == 404 => {
                return Ok(FileLookup::Missing);
            }
            Err(e) => return Err(classify(&what, e)),
        };
        let found = match body {
            ContentBody::Directory(_) => FileLookup::Missing,
            ContentBody::Entry(entry) => entry.into_lookup(max_bytes, &what)?,
        };
        if let Some(etag) = transport::etag(&headers) {
            self.files
                .lock()
                .map_err(|_| poisoned())?
                .keep(url, etag, found.clone());
        }
        Ok(found)
    }

    pub(crate) async fn changed_files(
        &self,
        pr: &PullRequestRef,
    ) -> Result<ChangedFiles, ReportError> {
        let client = self.client(pr.installation)?;
        let (owner, repo) = owner_repo(pr);
        let mut pages = transport::Pages::new(
            format!(
                "/repos/{owner}/{repo}/pulls/{}/files?per_page=100",
                pr.number
            ),
            MAX_FILE_PAGES,
        );
        let mut paths = Vec::new();
        while let Some(next) = pages.next() {
            let (page, headers): (Vec<DiffEntry>, _) =
                transport::send_paged(&client, "pulls/list-files", next)
                    .await
                    .map_err(|e| classify("listing the PR's files", e))?;
            pages.read(&headers);
            for entry in page {
                paths.push(entry.filename);
                paths.extend(entry.previous_filename);
            }
        }
        Ok(ChangedFiles {
            paths,
            complete: pages.complete(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> FileLookup {
        FileLookup::Found(RepositoryFile {
            blob_sha: "b".into(),
            text: text.into(),
        })
    }

    #[test]
    fn the_cache_keeps_the_newest_entries_and_answers_within_the_limit() {
        let mut cache = FileCache::default();
        for n in 0..=CACHED_FILES {
            cache.keep(format!("/f{n}"), format!("\"e{n}\""), file("abcd"));
        }
        assert_eq!(cache.entries.len(), CACHED_FILES);
        assert!(cache.lookup("/f0", 100).is_none(), "the oldest went first");
        assert_eq!(
            cache.lookup("/f1", 100),
            Some(("\"e1\"".to_owned(), file("abcd")))
        );
        assert_eq!(
            cache.lookup("/f1", 3).map(|(_, found)| found),
            Some(FileLookup::TooLarge { size: 4 })
        );
        cache.keep(
            "/big".into(),
            "\"b\"".into(),
            FileLookup::TooLarge { size: 10 },
        );
        assert!(cache.lookup("/big", 9).is_some());
        assert!(
            cache.lookup("/big", 10).is_none(),
            "never read, so it cannot answer a higher limit"
        );
    }

    #[test]
    fn paths_and_refs_are_percent_encoded_but_for_unreserved_characters() {
        assert_eq!(encoded("ephemera.yml"), "ephemera.yml");
        assert_eq!(encoded("feature/a b+c#"), "feature%2Fa%20b%2Bc%23");
        assert_eq!(encoded("é"), "%C3%A9");
    }
}
