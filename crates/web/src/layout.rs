//! The frame every page shares: navigation, styles (inline: one request a
//! page, nothing fetched elsewhere), and how a status reads (a word and a
//! colour, never the colour alone).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use ephemera_domain::EnvironmentStatus;
use maud::{DOCTYPE, Markup, html};

const STYLE: &str = "\
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#fff;--ok:#1a7f37;--bad:#cf222e;--busy:#9a6700;--idle:#59636e}\
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,sans-serif;color:var(--fg);background:var(--bg)}\
header{display:flex;flex-wrap:wrap;gap:1rem;align-items:center;padding:.6rem 1rem;border-bottom:1px solid var(--line)}\
header a{color:var(--fg);text-decoration:none;padding:.2rem .4rem;border-radius:4px}header a:focus,header a:hover{background:#eef1f4}\
header strong{margin-right:1rem}main{max-width:72rem;margin:0 auto;padding:1rem}\
table{width:100%;border-collapse:collapse}th,td{text-align:left;padding:.4rem .5rem;border-bottom:1px solid var(--line);vertical-align:top;overflow-wrap:anywhere}\
.status{display:inline-block;padding:0 .5rem;border-radius:1rem;border:1px solid currentColor;font-size:.85em;white-space:nowrap}\
.ok{color:var(--ok)}.bad{color:var(--bad)}.busy{color:var(--busy)}.idle{color:var(--idle)}\
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(9rem,1fr));gap:.75rem;margin:1rem 0}a.card{color:inherit;text-decoration:none}a.card:focus,a.card:hover{border-color:var(--fg)}\
.card{border:1px solid var(--line);border-radius:6px;padding:.6rem .8rem}.card b{display:block;font-size:1.6em}\
pre{background:#f6f8fa;border:1px solid var(--line);border-radius:6px;padding:.75rem;overflow:auto;max-height:30rem;font-size:.85em}\
form.filters{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin:1rem 0}label{display:flex;flex-direction:column;font-size:.85em;color:var(--muted)}\
input,select,button{font:inherit;padding:.3rem .5rem}.muted{color:var(--muted)}.empty{padding:1.5rem;border:1px dashed var(--line);border-radius:6px;color:var(--muted)}\
.timeline{padding-left:1.2rem;color:var(--muted)}.timeline time{color:var(--fg)}.who{display:flex;gap:.5rem;align-items:center;justify-content:flex-end;font-size:.9em}.actions{display:flex;gap:.75rem;flex-wrap:wrap}\
@media (max-width:40rem){td:nth-child(n+4),th:nth-child(n+4){display:none}}";

/// A whole page titled `title` around `body`.
pub fn page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ephemera" }
                style { (maud::PreEscaped(STYLE)) }
                script src="/assets/dashboard.js" defer {}
            }
            body {
                header {
                    strong { "ephemera" }
                    nav aria-label="Sections" {
                        a href="/" { "Overview" } " "
                        a href="/environments" { "Previews" } " "
                        a href="/deliveries" { "Deliveries" } " "
                        a href="/repositories" { "Repositories" } " "
                        a href="/docs" { "API" }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// `page(title, body)` answered with `status`: HTML, never cached, and
/// nothing loaded from elsewhere.
pub fn answer(status: StatusCode, title: &str, body: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header((
            CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .body(page(title, body).into_string())
}

/// How a status reads: its word, in a colour that says the same.
pub fn status(status: EnvironmentStatus) -> Markup {
    use EnvironmentStatus::*;
    let class = match status {
        Ready => "ok",
        Failed => "bad",
        Pending | Provisioning | Updating | Destroying | Stopping | Waking | Waiting => "busy",
        Skipped | Sleeping | Destroyed => "idle",
    };
    html! { span class={ "status " (class) } { (status.as_str()) } }
}
