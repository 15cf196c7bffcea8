//! The HTTP stack under octocrab: ephemera's headers on every request, and
//! every answer's status and `x-ratelimit-remaining` told to the observer.
//!
//! octocrab's ready-made client always sends `User-Agent: octocrab` and
//! appends extra headers instead of replacing them (a second User-Agent),
//! so ephemera builds the stack itself with octocrab's documented custom
//! builder: hyper + rustls as octocrab would, plus one layer of its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use ephemera_application::ports::GitHubObserver;
use http::header::{ACCEPT, HeaderName, HeaderValue, USER_AGENT};
use http::{Method, Request, Response};
use octocrab::service::middleware::base_uri::BaseUriLayer;
use octocrab::{AuthState, OctoBody, Octocrab, OctocrabBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tower::{Layer, Service};

/// `ephemera/<version>`, as GitHub asks every client to name itself.
pub const USER_AGENT_VALUE: &str = concat!("ephemera/", env!("CARGO_PKG_VERSION"));
/// GitHub's recommended media type.
pub const ACCEPT_VALUE: &str = "application/vnd.github+json";
/// The REST API version ephemera is written (and contract-tested) against.
pub const API_VERSION: &str = "2022-11-28";

const NO_READING: u64 = u64::MAX;

/// Which call a request is, as a fixed name (GitHub's operationId) for the
/// metrics; set on every request ephemera builds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Operation(pub(crate) &'static str);

/// What the layer reports to, shared by the App and its installations.
pub(crate) struct Watch {
    observer: OnceLock<Arc<dyn GitHubObserver>>,
    remaining: AtomicU64,
}

impl Default for Watch {
    fn default() -> Self {
        Self {
            observer: OnceLock::new(),
            remaining: AtomicU64::new(NO_READING),
        }
    }
}

impl Watch {
    pub(crate) fn observe_with(&self, observer: Arc<dyn GitHubObserver>) {
        let _ = self.observer.set(observer);
    }

    /// GitHub's `x-ratelimit-remaining` on the latest answer that had one.
    pub(crate) fn rate_limit_remaining(&self) -> Option<u64> {
        match self.remaining.load(Ordering::Relaxed) {
            NO_READING => None,
            n => Some(n),
        }
    }

    fn answered<B>(&self, operation: &str, response: &Response<B>) {
        let observer = self.observer.get();
        if let Some(observer) = observer {
            observer.request(operation, response.status().as_u16());
        }
        let remaining = response
            .headers()
            .get("x-ratelimit-remaining")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(n) = remaining {
            self.remaining.store(n, Ordering::Relaxed);
            if let Some(observer) = observer {
                observer.rate_limit_remaining(n);
            }
        }
    }
}

/// The one request ephemera does not build itself: octocrab exchanges the
/// App's JWT for an installation token on its own.
fn operation_of<B>(request: &Request<B>) -> &'static str {
    if let Some(Operation(name)) = request.extensions().get::<Operation>() {
        return name;
    }
    let path = request.uri().path();
    if request.method() == Method::POST
        && path.starts_with("/app/installations/")
        && path.ends_with("/access_tokens")
    {
        "apps/create-installation-access-token"
    } else {
        "other"
    }
}

#[derive(Clone)]
struct ConventionsLayer(Arc<Watch>);

impl<S> Layer<S> for ConventionsLayer {
    type Service = Conventions<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Conventions {
            inner,
            watch: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct Conventions<S> {
    inner: S,
    watch: Arc<Watch>,
}

impl<S, B> Service<Request<OctoBody>> for Conventions<S>
where
    S: Service<Request<OctoBody>, Response = Response<B>>,
    S::Future: Send + 'static,
    B: 'static,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<B>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<OctoBody>) -> Self::Future {
        // `insert`, not `append`: exactly one of each, whoever set it before.
        let headers = request.headers_mut();
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_VALUE));
        headers.insert(
            HeaderName::from_static("x-github-api-version"),
            HeaderValue::from_static(API_VERSION),
        );
        let operation = operation_of(&request);
        let watch = self.watch.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let response = answer.await?;
            watch.answered(operation, &response);
            Ok(response)
        })
    }
}

/// An octocrab client authenticated as the App, on ephemera's stack.
pub(crate) fn app_client(
    auth: AuthState,
    api_url: http::Uri,
    watch: Arc<Watch>,
) -> Result<Octocrab, String> {
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .map_err(|e| format!("loading the system's root certificates: {e}"))?
        // Plain http for GitHub Enterprise Server behind a proxy, and tests.
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(https);
    let octocrab = OctocrabBuilder::new_empty()
        .with_service(client)
        .with_layer(&ConventionsLayer(watch))
        .with_layer(&BaseUriLayer::new(api_url))
        .with_auth(auth)
        .build();
    match octocrab {
        Ok(octocrab) => Ok(octocrab),
        Err(never) => match never {},
    }
}

fn request(
    client: &Octocrab,
    operation: &'static str,
    method: Method,
    path: String,
    body: Option<&impl Serialize>,
) -> Result<Request<OctoBody>, octocrab::Error> {
    let request = http::request::Builder::new()
        .method(method)
        .uri(path)
        .extension(Operation(operation));
    client.build_request(request, body)
}

/// Sends one request named `operation` and reads GitHub's JSON answer;
/// a non-2xx answer is octocrab's `GitHub` error with status, message,
/// `errors` and headers.
pub(crate) async fn send<R: DeserializeOwned>(
    client: &Octocrab,
    operation: &'static str,
    method: Method,
    path: String,
    body: Option<&impl Serialize>,
) -> Result<R, octocrab::Error> {
    let response = client
        .execute(request(client, operation, method, path, body)?)
        .await?;
    let response = octocrab::map_github_error(response).await?;
    <R as octocrab::FromResponse>::from_response(response).await
}

/// Like [`send`] for calls whose answer says nothing but its status.
pub(crate) async fn status(
    client: &Octocrab,
    operation: &'static str,
    method: Method,
    path: String,
) -> Result<http::StatusCode, octocrab::Error> {
    let response = client
        .execute(request(client, operation, method, path, None::<&()>)?)
        .await?;
    Ok(response.status())
}

/// [`send`], also returning the answer's headers (for `Link` pagination).
pub(crate) async fn send_paged<R: DeserializeOwned>(
    client: &Octocrab,
    operation: &'static str,
    path: String,
) -> Result<(R, http::HeaderMap), octocrab::Error> {
    let response = client
        .execute(request(client, operation, Method::GET, path, None::<&()>)?)
        .await?;
    let response = octocrab::map_github_error(response).await?;
    let headers = response.headers().clone();
    let body = <R as octocrab::FromResponse>::from_response(response).await?;
    Ok((body, headers))
}

/// A GET that may be answered `304 Not Modified` when `etag` is given
/// (GitHub does not count those against the rate limit): `None` then,
/// else the JSON answer and its headers.
pub(crate) async fn get_unless_unchanged<R: DeserializeOwned>(
    client: &Octocrab,
    operation: &'static str,
    path: String,
    etag: Option<&str>,
) -> Result<Option<(R, http::HeaderMap)>, octocrab::Error> {
    let mut request = request(client, operation, Method::GET, path, None::<&()>)?;
    if let Some(value) = etag.and_then(|e| http::HeaderValue::from_str(e).ok()) {
        request
            .headers_mut()
            .insert(http::header::IF_NONE_MATCH, value);
    }
    let response = client.execute(request).await?;
    if response.status() == http::StatusCode::NOT_MODIFIED {
        return Ok(None);
    }
    let response = octocrab::map_github_error(response).await?;
    let headers = response.headers().clone();
    let body = <R as octocrab::FromResponse>::from_response(response).await?;
    Ok(Some((body, headers)))
}

/// The `rel="next"` target of a `Link` header, if any.
fn next_link(headers: &http::HeaderMap) -> Option<url::Url> {
    let link = headers.get(http::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        if !params.split(';').any(|p| p.trim() == "rel=\"next\"") {
            return None;
        }
        url::Url::parse(target.trim().trim_start_matches('<').trim_end_matches('>')).ok()
    })
}

/// An answer's `ETag`, for a later conditional request.
pub(crate) fn etag(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get(http::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The path and query of the `rel="next"` page in a `Link` header, if any.
pub(crate) fn next_page(headers: &http::HeaderMap) -> Option<String> {
    let url = next_link(headers)?;
    Some(match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    })
}

/// The `cursor` of the `rel="next"` page in a `Link` header, if any.
pub(crate) fn next_cursor(headers: &http::HeaderMap) -> Option<String> {
    next_link(headers)?
        .query_pairs()
        .find(|(key, _)| key == "cursor")
        .map(|(_, value)| value.into_owned())
}

/// A listing's pages, followed through `Link: rel="next"` up to a cap.
pub(crate) struct Pages {
    next: Option<String>,
    read: u32,
    max: u32,
    cut: bool,
}

impl Pages {
    /// Starting at `first`, reading at most `max` pages.
    pub(crate) fn new(first: String, max: u32) -> Self {
        Self {
            next: Some(first),
            read: 0,
            max,
            cut: false,
        }
    }

    /// The path of the page to read next, if any is left.
    pub(crate) fn next(&mut self) -> Option<String> {
        self.next.take()
    }

    /// Takes in a page's answer: its `Link` says what comes after it.
    pub(crate) fn read(&mut self, headers: &http::HeaderMap) {
        self.read += 1;
        self.next = next_page(headers);
        if self.read >= self.max && self.next.is_some() {
            self.cut = true;
            self.next = None;
        }
    }

    /// Whether the page read last was the listing's last one.
    pub(crate) fn at_end(&self) -> bool {
        self.next.is_none() && !self.cut
    }

    /// Pages read so far.
    pub(crate) fn count(&self) -> u32 {
        self.read
    }

    /// False when a next page was left unread at the cap.
    pub(crate) fn complete(&self) -> bool {
        !self.cut
    }
}

#[cfg(test)]
mod link_tests {
    use super::*;

    #[test]
    fn the_next_cursor_is_read_from_the_link_header() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::LINK,
            http::HeaderValue::from_static(
                "<https://api.github.com/app/hook/deliveries?per_page=2&cursor=v1_12077215967&status=failure>; rel=\"next\", \
                 <https://api.github.com/app/hook/deliveries?per_page=2>; rel=\"first\"",
            ),
        );
        assert_eq!(next_cursor(&headers).as_deref(), Some("v1_12077215967"));
        headers.insert(
            http::header::LINK,
            http::HeaderValue::from_static("<https://api.github.com/x?cursor=a>; rel=\"prev\""),
        );
        assert_eq!(next_cursor(&headers), None);
        assert_eq!(next_cursor(&http::HeaderMap::new()), None);
    }
}
