//! The `Link: <…>; rel="next"` header of keyset-paginated lists.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use ephemera_application::{Cursor, Page};
use serde::Serialize;

/// A list page as the API answers it: 200 with the items as `body` makes
/// them, and the next page's `Link` when there is one.
pub(crate) fn page_response<T, B: Serialize>(
    req: &HttpRequest,
    page: Page<T>,
    body: impl FnMut(T) -> B,
) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    if let Some(next) = page.next {
        response.insert_header((header::LINK, next_link(req, next)));
    }
    let items: Vec<B> = page.items.into_iter().map(body).collect();
    response.json(items)
}

/// The next page's absolute URL: this request's URL with every filter kept
/// and `cursor` replaced.
pub(crate) fn next_link(req: &HttpRequest, next: Cursor) -> String {
    let info = req.connection_info();
    let mut pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    pairs.retain(|(key, _)| key != "cursor");
    pairs.push(("cursor".into(), next.encode()));
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    format!(
        "<{}://{}{}?{}>; rel=\"next\"",
        info.scheme(),
        info.host(),
        req.path(),
        query
    )
}
