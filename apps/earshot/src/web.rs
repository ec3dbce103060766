//! The CSR guidance panel: the static files in `apps/earshot/web/` (plain HTML, CSS and ES
//! modules, no build step), compiled into the binary and served at `/` and
//! `/assets/<version>/<file>`. `cargo run -- serve` shows the panel, and a release binary
//! carries it.
//!
//! Caching: asset URLs carry a version, a hash of every file of the panel. The index, which
//! names them, is revalidated on every load (`no-cache`, with an `ETag`); the assets are cached
//! for good (`immutable`). So a browser never runs the modules of two builds together, and an
//! upgrade is picked up on the next load. An asset asked for under another version is a 404
//! rather than today's file under yesterday's name, which a cache would then keep forever.
//!
//! Every answer carries a strict Content-Security-Policy (scripts, styles, images and
//! connections from this origin only, the WebSocket included; nothing inline; no framing) and
//! `X-Content-Type-Options: nosniff`. The panel fetches nothing from anywhere else.
//!
//! **Invariant:** the panel speaks only the public API (`/api/v1`, the WebSocket protocol of
//! docs/protocol.md) with the token the person signs in with; this module serves files and
//! nothing else.

use std::sync::OnceLock;

use axum::Router;
use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};

use crate::api::error::ApiError;

/// The policy of every panel response. `ws:`/`wss:` because `'self'` does not cover the
/// WebSocket's scheme in every browser.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; font-src 'self'; connect-src 'self' ws: wss:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One file of the panel.
pub struct Asset {
    /// The file name under `apps/earshot/web/` (and under `/assets/<version>/`).
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
}

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file under `/assets/`.
pub const ASSETS: &[Asset] = &[
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("live.js", JS),
    asset!("dom.js", JS),
    asset!("signin.js", JS),
    asset!("calls.js", JS),
    asset!("session.js", JS),
    asset!("supervisor.js", JS),
    asset!("ruleset.js", JS),
    asset!("icon.svg", "image/svg+xml"),
];

/// The page: `{{assets}}` stands for `/assets/<version>`.
const INDEX_TEMPLATE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/web/index.html"));

struct Built {
    version: String,
    index: String,
    etag: HeaderValue,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut hash = Sha256::new();
        hash.update(INDEX_TEMPLATE.as_bytes());
        for a in ASSETS {
            hash.update(a.name.as_bytes());
            hash.update([0]);
            hash.update(a.body.as_bytes());
            hash.update([0]);
        }
        let version: String = hash.finalize()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let index = INDEX_TEMPLATE.replace("{{assets}}", &format!("/assets/{version}"));
        let etag = HeaderValue::from_str(&format!("\"{version}\""))
            .expect("a quoted hex string is a header value");
        Built {
            version,
            index,
            etag,
        }
    })
}

/// The version in asset URLs (a hash of the panel's files).
pub fn version() -> &'static str {
    &built().version
}

/// The panel's routes; they need no state.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{version}/{file}", get(asset))
}

async fn index(headers: HeaderMap) -> Response {
    let b = built();
    let fresh = headers
        .get(IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == b.etag.as_bytes());
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        b.index.clone().into_response()
    };
    let h = response.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(ETAG, b.etag.clone());
    protect(h);
    response
}

async fn asset(Path((version, file)): Path<(String, String)>) -> Response {
    let found = ASSETS.iter().find(|a| a.name == file);
    let Some(a) = found.filter(|_| version == built().version) else {
        let mut response = ApiError::not_found("asset").into_response();
        protect(response.headers_mut());
        return response;
    };
    let mut response = a.body.into_response();
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    protect(h);
    response
}

fn protect(h: &mut HeaderMap) {
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY_VALUE),
    );
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // The page's URL never carries a token, but nothing on it needs to tell others where
    // it came from either.
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}
