//! The guidance panel: what the binary serves at `/` and under `/assets/` (content types,
//! caching, the Content-Security-Policy, the API's JSON 404 left alone), and the panel itself
//! in a real headless Chromium — `e2e/panel.test.mjs`, run with node against a server
//! started here, with `earshot replay` streaming a recorded call into the session it opens.
//!
//! The browser test needs node (20 or newer), `e2e/node_modules` (`npm ci --prefix e2e`) and
//! Chromium (`apt-get install chromium`, or `CHROMIUM=/path`). Without them it is skipped
//! with a loud message, unless `EARSHOT_REQUIRE_E2E=1`, which makes a skip a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use earshot::server::ServerConfig;
use earshot::web::{ASSETS, CONTENT_SECURITY_POLICY_VALUE};
use reqwest::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, HeaderMap, IF_NONE_MATCH,
    X_CONTENT_TYPE_OPTIONS,
};
use serde_json::Value;
use store::testkit::TestStore;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const REQUIRE_ENV: &str = "EARSHOT_REQUIRE_E2E";

fn header(h: &HeaderMap, name: impl reqwest::header::AsHeaderName) -> &str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Every panel answer carries the policy and `nosniff`.
fn assert_protected(h: &HeaderMap, what: &str) {
    assert_eq!(
        header(h, CONTENT_SECURITY_POLICY),
        CONTENT_SECURITY_POLICY_VALUE,
        "{what}"
    );
    assert_eq!(header(h, X_CONTENT_TYPE_OPTIONS), "nosniff", "{what}");
}

/// `/assets/<version>/app.js`, as the page names it.
fn asset_path(index: &str, file: &str) -> String {
    let end = index
        .find(&format!("/{file}\""))
        .unwrap_or_else(|| panic!("the page links {file}: {index}"));
    let start = index[..end].rfind("\"/assets/").expect("an /assets/ URL") + 1;
    index[start..end + 1 + file.len()].to_owned()
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.http.get(app.url(path)).send().await.unwrap()
}

#[tokio::test]
async fn the_panel_is_served_from_the_binary_with_a_strict_policy() {
    let db = TestStore::sqlite();
    let app = spawn_app(db.open_store().await).await;

    let r = get(&app, "/").await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(header(&h, CONTENT_TYPE), "text/html; charset=utf-8");
    assert_eq!(header(&h, CACHE_CONTROL), "no-cache");
    assert_protected(&h, "index");
    let csp = header(&h, CONTENT_SECURITY_POLICY);
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self' ws: wss:",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe"), "nothing inline is allowed: {csp}");
    let page = r.text().await.unwrap();
    assert!(page.contains("<title>earshot"), "{page}");
    // Nothing inline (the policy would block it anyway) and nothing from another origin.
    assert!(!page.contains("style="), "no inline style: {page}");
    assert!(!page.contains("<style"), "no inline style: {page}");
    for script in page.split("<script").skip(1) {
        assert!(
            script.starts_with(" type=\"module\" src=\"/assets/"),
            "{script}"
        );
        assert!(script.contains("></script>"), "no inline script: {script}");
    }
    assert!(!page.contains("{{"), "the template is filled: {page}");

    // The index revalidates; an unchanged one is answered 304.
    let etag = header(&h, ETAG).to_owned();
    assert!(!etag.is_empty());
    let r = app
        .http
        .get(app.url("/"))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    // Assets: the right type, cached for good under their versioned URL.
    for (file, content_type, needle) in [
        ("app.js", "text/javascript; charset=utf-8", "import "),
        ("app.css", "text/css; charset=utf-8", "--critical"),
        ("icon.svg", "image/svg+xml", "<svg"),
    ] {
        let path = asset_path(&page, file);
        let r = get(&app, &path).await;
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers().clone();
        assert_eq!(header(&h, CONTENT_TYPE), content_type, "{path}");
        assert_eq!(
            header(&h, CACHE_CONTROL),
            "public, max-age=31536000, immutable",
            "{path}"
        );
        assert_protected(&h, &path);
        assert!(r.text().await.unwrap().contains(needle), "{path}");
    }
    // A module imported by another one is served beside it.
    let session = asset_path(&page, "app.js").replace("app.js", "session.js");
    assert_eq!(get(&app, &session).await.status(), 200);

    // Another version's URL, or a file that is not there: the API's JSON 404.
    let missing = asset_path(&page, "app.js").replace("app.js", "nope.js");
    for path in ["/assets/000000000000/app.js", missing.as_str()] {
        let r = get(&app, path).await;
        assert_eq!(r.status(), 404, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{path}: {body}");
    }

    // The API's routes are untouched: an unknown one is still a JSON 404, known ones answer.
    let r = get(&app, "/api/v1/nope").await;
    assert_eq!(r.status(), 404);
    assert_eq!(header(r.headers(), CONTENT_TYPE), "application/json");
    assert!(
        r.headers().get(CONTENT_SECURITY_POLICY).is_none(),
        "the policy is the panel's"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found", "{body}");
    let (status, body) = app.get("/api/v1/calls", &app.admin).await;
    assert_eq!(status, 200, "{body}");
    let r = get(&app, "/api/v1/calls").await;
    assert_eq!(r.status(), 401, "the API still wants a token");
    assert_eq!(get(&app, "/openapi.json").await.status(), 200);

    app.stop().await.unwrap();
}

/// Every module one file imports is one the server serves, and no file names another origin
/// (the panel must work with no internet).
#[test]
fn the_panel_links_only_its_own_files() {
    let names: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
    for a in ASSETS {
        if a.name.ends_with(".svg") {
            continue; // its xmlns is a name, not a fetch
        }
        for scheme in ["http://", "https://"] {
            assert!(!a.body.contains(scheme), "{} mentions {scheme}", a.name);
        }
        for import in a.body.split(" from './").skip(1) {
            let module = import.split('\'').next().unwrap();
            assert!(
                names.contains(&module),
                "{} imports ./{module}, which is not in web::ASSETS",
                a.name
            );
        }
    }
    let on_disk: Vec<String> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/web"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "index.html")
        .collect();
    for file in &on_disk {
        assert!(
            names.contains(&file.as_str()),
            "web/{file} is not served: add it to web::ASSETS"
        );
    }
}

/// What the browser test needs that may be missing on this machine.
fn missing_prerequisite(repo: &Path, chromium: &Path) -> Option<String> {
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {
            let version = String::from_utf8_lossy(&out.stdout);
            let major: u32 = version
                .trim()
                .trim_start_matches('v')
                .split('.')
                .next()
                .and_then(|m| m.parse().ok())
                .unwrap_or(0);
            if major < 20 {
                return Some(format!("node {} is too old (20 or newer)", version.trim()));
            }
        }
        _ => return Some("node is not installed (apt-get install nodejs npm)".into()),
    }
    if !repo
        .join("e2e/node_modules/playwright-core/package.json")
        .exists()
    {
        return Some("e2e/node_modules is missing (npm ci --prefix e2e)".into());
    }
    if !chromium.exists() {
        return Some(format!(
            "no Chromium at {} (apt-get install chromium, or set CHROMIUM)",
            chromium.display()
        ));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panel_in_a_headless_browser() {
    let repo = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .expect("the repository root");
    let chromium =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    if let Some(why) = missing_prerequisite(&repo, &chromium) {
        if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1" || v == "true") {
            panic!("the browser test is required ({REQUIRE_ENV} is set) but {why}");
        }
        // Straight to stderr: the harness captures `eprintln!` of a passing test, and a skip
        // must be seen.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n!!!!!! SKIPPED browser test panel::the_panel_in_a_headless_browser: {why}.\n\
             !!!!!! Set {REQUIRE_ENV}=1 to make this a failure.\n"
        );
        return;
    }

    let db = TestStore::sqlite();
    let mut config = ServerConfig::default();
    config.assist.worker.debounce = Duration::from_millis(50);
    let app = spawn_app_with(db.open_store().await, config).await;
    let artifacts = repo.join("target/e2e-artifacts");
    let url = app.url("");
    let admin = app.admin.clone();
    let shown = artifacts.display().to_string();
    // The node test drives a browser against this process's server: run it on a blocking
    // thread so the server keeps both runtime workers.
    let status = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(["--test", "e2e/panel.test.mjs"])
            .current_dir(&repo)
            .env("EARSHOT_URL", url)
            .env("EARSHOT_ADMIN_TOKEN", admin)
            .env("EARSHOT_BIN", env!("CARGO_BIN_EXE_earshot"))
            .env("EARSHOT_ARTIFACTS", &artifacts)
            .env("CHROMIUM", &chromium)
            .status()
    })
    .await
    .expect("the node runner's thread")
    .expect("node starts");
    assert!(
        status.success(),
        "the browser test failed ({status}); its output is above, screenshots in {shown}"
    );
    app.stop().await.unwrap();
    db.finish().await;
}
