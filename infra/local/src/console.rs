//! The operator's console (`console/`), embedded at build time (build.rs)
//! and served at `/` without auth: it holds no data, and every call it makes
//! goes to `/admin/*`, behind the authorizer.

use axum::body::Body;
use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};

include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

/// Hashed names never change content: cached for a year. `index.html`
/// names the current ones and is revalidated every time.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";
/// The page loads only its own script and style and talks only to its own
/// origin.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, ct, bytes)| (*ct, *bytes))
}

fn answer(path: &str, cache: &'static str) -> Response {
    let Some((content_type, bytes)) = asset(path) else {
        return (
            StatusCode::NOT_FOUND,
            "the console is not built: run scripts/build-console",
        )
            .into_response();
    };
    let mut response = Response::new(Body::from(bytes));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if content_type.starts_with("text/html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    response
}

pub async fn index() -> Response {
    answer("index.html", REVALIDATE)
}

pub async fn hashed_asset(Path(file): Path<String>) -> Response {
    // Only names the build produced are known; anything else (`..`
    // included) is simply not in the table.
    if asset(&format!("assets/{file}")).is_none() {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    }
    answer(&format!("assets/{file}"), IMMUTABLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_console_is_embedded_with_its_hashed_assets() {
        let (ct, html) = asset("index.html").expect("console/dist/index.html is embedded");
        assert!(ct.starts_with("text/html"));
        let html = std::str::from_utf8(html).expect("utf-8");
        for (path, _, _) in ASSETS.iter().filter(|(p, _, _)| p.starts_with("assets/")) {
            assert!(html.contains(path), "index.html does not load {path}");
        }
        assert!(ASSETS.iter().any(|(p, _, _)| p.ends_with(".js")));
    }
}
