//! The dashboard, embedded in the binary: plain ES modules and a vendored
//! uPlot, no build step, so the server needs no Node at run time.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

macro_rules! assets {
    ($($name:literal => $mime:literal),* $(,)?) => {
        /// `(path under /ui/, content type, bytes)` of every embedded file.
        pub const ASSETS: &[(&str, &str, &[u8])] = &[
            $(($name, $mime, include_bytes!(concat!("../../../dashboards/", $name))),)*
        ];
    };
}

assets! {
    "index.html" => "text/html; charset=utf-8",
    "app.js" => "text/javascript; charset=utf-8",
    "api.js" => "text/javascript; charset=utf-8",
    "i18n.js" => "text/javascript; charset=utf-8",
    "format.js" => "text/javascript; charset=utf-8",
    "ecg.js" => "text/javascript; charset=utf-8",
    "views.js" => "text/javascript; charset=utf-8",
    "style.css" => "text/css; charset=utf-8",
    "vendor/uplot/uPlot.esm.js" => "text/javascript; charset=utf-8",
    "vendor/uplot/uPlot.min.css" => "text/css; charset=utf-8",
}

fn serve(path: &str) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == path) {
        Some((_, mime, bytes)) => (
            [
                (header::CONTENT_TYPE, *mime),
                // Revalidate every load: assets change with the binary, not with a hash in the name.
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'self'; connect-src 'self'; img-src 'self' data:; media-src 'self' data:; style-src 'self'; object-src 'none'; frame-ancestors 'none'",
                ),
            ],
            *bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET /` — the single page.
pub async fn index() -> Response {
    serve("index.html")
}

/// `GET /ui/{*path}` — scripts, styles, vendored libraries.
pub async fn file(Path(path): Path<String>) -> Response {
    serve(&path)
}
