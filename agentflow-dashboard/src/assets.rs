//! The web UI, embedded in the binary: plain HTML, CSS and ES modules, no build step.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../assets/index.html");

/// `(path under /assets/, content type, body)`.
const FILES: &[(&str, &str, &str)] = &[
    ("app.css", "text/css; charset=utf-8", include_str!("../assets/app.css")),
    ("js/app.js", JS, include_str!("../assets/js/app.js")),
    ("js/api.js", JS, include_str!("../assets/js/api.js")),
    ("js/live.js", JS, include_str!("../assets/js/live.js")),
    ("js/dom.js", JS, include_str!("../assets/js/dom.js")),
    ("js/format.js", JS, include_str!("../assets/js/format.js")),
    ("js/board.js", JS, include_str!("../assets/js/board.js")),
    ("js/task.js", JS, include_str!("../assets/js/task.js")),
    ("js/history.js", JS, include_str!("../assets/js/history.js")),
    ("js/settings.js", JS, include_str!("../assets/js/settings.js")),
    ("js/chrome.js", JS, include_str!("../assets/js/chrome.js")),
];

const JS: &str = "text/javascript; charset=utf-8";

/// The page shell for every UI route (`/`, `/history`, `/settings`, `/task/{id}`).
pub(crate) async fn index() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")],
        INDEX,
    )
        .into_response()
}

pub(crate) async fn asset(Path(path): Path<String>) -> Response {
    match FILES.iter().find(|(p, _, _)| *p == path) {
        Some((_, mime, body)) => {
            ([(header::CONTENT_TYPE, *mime), (header::CACHE_CONTROL, "no-cache")], *body)
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// Total size of the embedded UI in bytes.
pub(crate) fn total_bytes() -> usize {
    INDEX.len() + FILES.iter().map(|(_, _, b)| b.len()).sum::<usize>()
}
