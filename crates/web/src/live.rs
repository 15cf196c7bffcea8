//! Pages that stay current without reloading: each page's live part is
//! sent again over server-sent events (`/live/<page>`) whenever it changes,
//! and a few lines of JavaScript (`/assets/dashboard.js`, served from the
//! binary) put it in place. Without JavaScript the page still works; it
//! just does not move.

use std::future::Future;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use maud::{Markup, html};

use crate::layout::answer;
use crate::people::Viewer;

/// A page: its title, what stays put (heading, filters), and what the
/// live stream refreshes.
pub struct View {
    pub title: String,
    pub head: Markup,
    pub live: Markup,
}

/// How often a live page looks for a change.
const POLL: Duration = Duration::from_secs(1);
/// A comment goes out at least this often, so a closed tab is noticed.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// A stream ends after this; the browser reconnects on its own.
const LIFETIME: Duration = Duration::from_secs(300);

/// Who is signed in, and the way out.
fn bar(who: &Viewer) -> Markup {
    html! {
        @if let Viewer::Person { login, csrf, .. } = who {
            form class="who" method="post" action="/logout" {
                "Signed in as " strong { "@" (login) } " "
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Sign out" }
            }
        }
    }
}

/// The page `made` for `who`, with its live part marked for the stream at
/// `/live<path>?<query>` (the request's own address).
pub fn show(req: &HttpRequest, who: &Viewer, made: Result<View, HttpResponse>) -> HttpResponse {
    let view = match made {
        Ok(view) => view,
        Err(page) => return page,
    };
    let mut stream = format!("/live{}", req.path());
    if !req.query_string().is_empty() {
        stream.push('?');
        stream.push_str(req.query_string());
    }
    answer(
        StatusCode::OK,
        &view.title,
        html! {
            (bar(who))
            (view.head)
            div id="live" data-live=(stream) aria-live="polite" { (view.live) }
        },
    )
}

/// One server-sent event named `name` carrying `text` (one `data:` line
/// per line of it).
fn event(name: &str, text: &str) -> Bytes {
    let mut out = format!("event: {name}\n");
    for line in text.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// The stream of a page's live part: sent at once, then again each time
/// it changes; a keep-alive comment in between; ended after a while.
pub fn live<F, Fut>(make: F) -> HttpResponse
where
    F: Fn() -> Fut + 'static,
    Fut: Future<Output = Result<View, HttpResponse>> + 'static,
{
    struct Watch<F> {
        make: F,
        last: Option<String>,
        started: Instant,
        said: Instant,
        first: bool,
    }
    let watch = Watch {
        make,
        last: None,
        started: Instant::now(),
        said: Instant::now(),
        first: true,
    };
    let stream = futures::stream::unfold(watch, |mut watch| async move {
        loop {
            if watch.started.elapsed() > LIFETIME {
                return None;
            }
            if !watch.first {
                tokio::time::sleep(POLL).await;
            }
            watch.first = false;
            // A page that cannot be made now (the database is away) is
            // tried again at the next poll.
            if let Ok(view) = (watch.make)().await {
                let html = view.live.into_string();
                if watch.last.as_deref() != Some(html.as_str()) {
                    let bytes = event("live", &html);
                    watch.last = Some(html);
                    watch.said = Instant::now();
                    return Some((Ok::<_, actix_web::Error>(bytes), watch));
                }
            }
            if watch.said.elapsed() >= KEEPALIVE {
                watch.said = Instant::now();
                return Some((Ok(Bytes::from_static(b": still here\n\n")), watch));
            }
        }
    });
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/event-stream"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .streaming(stream)
}

/// The few lines of JavaScript the pages use.
pub const SCRIPT: &str = include_str!("dashboard.js");

pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/javascript; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .body(SCRIPT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_carries_each_line_as_data() {
        assert_eq!(
            event("live", "<p>a</p>\n<pre>x\ny</pre>"),
            Bytes::from_static(b"event: live\ndata: <p>a</p>\ndata: <pre>x\ndata: y</pre>\n\n")
        );
    }
}
