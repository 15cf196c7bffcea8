//! The `Link: <…>; rel="next"` header of keyset-paginated lists.

use actix_web::HttpRequest;
use ephemera_application::Cursor;

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
