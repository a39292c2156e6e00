//! The dashboard: static files from `web/`, embedded in the binary at build time, and the
//! answer for every path no route knows (a 404 problem).

use axum::http::{header, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::Problem;

#[derive(rust_embed::RustEmbed)]
#[folder = "web/"]
struct Assets;

fn serve(path: &str) -> Option<Response> {
    let file = Assets::get(path)?;
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    Some(
        (
            [(header::CONTENT_TYPE, mime.as_ref().to_string())],
            file.data.into_owned(),
        )
            .into_response(),
    )
}

pub async fn index() -> Response {
    serve("index.html").unwrap_or_else(|| not_found("/"))
}

/// A dashboard file for `GET`/`HEAD` outside `/api/`, otherwise a 404 problem.
pub async fn fallback(method: Method, uri: Uri) -> Response {
    let path = uri.path();
    let asset = (method == Method::GET || method == Method::HEAD)
        && !path.starts_with("/api/")
        && path.len() > 1;
    asset
        .then(|| serve(&path[1..]))
        .flatten()
        .unwrap_or_else(|| not_found(path))
}

fn not_found(path: &str) -> Response {
    let shown: String = path.chars().take(200).collect();
    Problem::http(
        StatusCode::NOT_FOUND,
        format!("nothing at {shown}; the API is described at /api/v1/openapi.json"),
    )
    .into_response()
}
