//! The binary as a user runs it.

use std::io::{BufRead, BufReader};
use std::process::{Command as StdCommand, Stdio};

use assert_cmd::Command;
use predicates::prelude::*;
use store::testkit::TestStore;

use crate::helpers::seed_call;

/// Runs the command, asserts it succeeded, and returns its standard output.
fn stdout(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).expect("UTF-8 output")
}

fn earshot() -> Command {
    let mut c = Command::cargo_bin("earshot").unwrap();
    c.env_remove("DATABASE_URL")
        .env("EARSHOT_LOG_FORMAT", "json");
    c
}

#[test]
fn a_call_id_that_is_not_a_uuid_is_a_clear_error() {
    earshot()
        .args(["events", "call-42"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "invalid call id: \"call-42\" is not a UUID",
        ));
}

#[tokio::test]
async fn events_prints_the_log_and_the_state_at_any_seq() {
    let db = TestStore::sqlite();
    let call = seed_call(&db).await;
    let call_s = call.to_string();

    let text = stdout(
        earshot()
            .args(["events", &call_s])
            .env("DATABASE_URL", &db.url),
    );
    assert!(
        text.contains(&format!("call {call}: all 4 events")),
        "{text}"
    );
    assert!(text.contains("segment_added"));
    assert!(text.contains("i guarantee we'll have it fixed today"));
    assert!(text.contains("alerts: 1 (1 unacknowledged)"), "{text}");
    assert!(text.contains("state at seq 4: Live"));

    // At seq 2: only the first segment, no alert yet.
    let text = stdout(
        earshot()
            .args(["events", &call_s, "--at", "2"])
            .env("DATABASE_URL", &db.url),
    );
    assert!(text.contains("up to seq 2 of 4 events"), "{text}");
    assert!(text.contains("my ac stopped cooling"));
    assert!(!text.contains("i guarantee"), "{text}");
    assert!(text.contains("alerts: 0"));

    // JSON: the events and the rebuilt state.
    let out = stdout(
        earshot()
            .args(["events", &call_s, "--at", "3", "--json"])
            .env("DATABASE_URL", &db.url),
    );
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["top_seq"], 4);
    assert_eq!(doc["as_of"], 3);
    assert_eq!(doc["events"].as_array().unwrap().len(), 3);
    assert_eq!(doc["events"][2]["event"]["type"], "segment_added");
    assert_eq!(doc["state"]["status"], "live");
    assert_eq!(doc["state"]["segments"].as_array().unwrap().len(), 2);

    // An unknown call.
    earshot()
        .args(["events", &domain::CallId::new().to_string()])
        .env("DATABASE_URL", &db.url)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("has no events in this store"));
}

#[tokio::test]
async fn migrate_then_events_on_postgres() {
    let Some(db) = TestStore::postgres("api::migrate_then_events_on_postgres").await else {
        return;
    };
    earshot()
        .arg("migrate")
        .env("DATABASE_URL", &db.url)
        .assert()
        .success()
        .stdout(predicate::str::contains("migrated the postgres store"));
    let call = seed_call(&db).await;
    earshot()
        .args(["events", &call.to_string(), "--at", "4"])
        .env("DATABASE_URL", &db.url)
        .assert()
        .success()
        .stdout(predicate::str::contains("state at seq 4: Live"));
    db.finish().await;
}

/// `serve` on a fresh data directory: creates the embedded store, prints where it listens,
/// answers, and stops cleanly on SIGTERM.
#[test]
fn serve_on_a_fresh_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("earshot"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("DATABASE_URL")
        .env("EARSHOT_DATA_DIR", dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    // Keep reading (the first start also prints the admin token) so the pipe stays open.
    let rest = std::thread::spawn(move || {
        let mut all = String::new();
        std::io::Read::read_to_string(&mut out, &mut all).unwrap();
        all
    });
    assert!(
        line.starts_with("earshot listening on http://127.0.0.1:"),
        "{line}"
    );
    assert!(line.contains("store: sqlite"), "{line}");
    let url = line.split_whitespace().nth(3).unwrap().to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        reqwest::get(format!("{url}/readyz"))
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    assert!(dir.path().join("data/earshot.db").exists());
    // SIGTERM: graceful shutdown, exit code 0.
    let pid = child.id().to_string();
    StdCommand::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let rest = rest.join().unwrap();
    assert!(
        rest.contains("admin token"),
        "the first start shows the admin token: {rest}"
    );
}

fn repo(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

#[test]
fn rules_check_validates_a_ruleset() {
    earshot()
        .args(["rules", "check"])
        .arg(repo("rulesets/home-services.yaml"))
        .assert()
        .success()
        .stdout(predicate::str::contains("ruleset home-services v1"))
        .stdout(predicate::str::contains(
            "valid — 21 rules: 9 prohibited, 5 required, 7 triggers",
        ));
}

#[test]
fn rules_check_runs_a_redacted_transcript() {
    let text = stdout(
        earshot()
            .args(["rules", "check"])
            .arg(repo("rulesets/home-services.yaml"))
            .arg("--transcript")
            .arg(repo("transcripts/hvac-booking-guarantee.json")),
    );
    // The prohibited claim, on the line right after the segment that made it.
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("I guarantee we'll have it fixed today"))
        .unwrap();
    assert!(lines[at].starts_with("00:14.6    agent:"), "{}", lines[at]);
    assert!(
        lines[at + 1].contains("ALERT CRITICAL no-guarantee"),
        "{}",
        lines[at + 1]
    );
    // The callback number is redacted before the rules (and the screen) see it.
    assert!(text.contains("You can reach me at [PHONE]."), "{text}");
    assert!(!text.contains("four one five"), "{text}");
    assert!(
        text.contains(
            "summary: 1 alerts (1 critical, 0 warning, 0 info); checklist 5 done, 0 missed; 1 cards"
        ),
        "{text}"
    );

    // The same as JSON: events carry the rule and the ruleset version that fired.
    let out = stdout(
        earshot()
            .args(["rules", "check", "--json"])
            .arg(repo("rulesets/home-services.yaml"))
            .arg("--transcript")
            .arg(repo("transcripts/hvac-booking-guarantee.json")),
    );
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let alert = &doc["segments"][2]["events"][0];
    assert_eq!(alert["type"], "alert_raised");
    assert_eq!(alert["data"]["rule"]["rule_id"], "no-guarantee");
    assert_eq!(alert["data"]["rule"]["ruleset"]["version"], 1);
    assert_eq!(alert["data"]["severity"], "critical");
    let phone = &doc["segments"][7];
    assert_eq!(phone["redactions"][0]["kind"], "phone");
}

#[test]
fn rules_check_reads_harper_valley_calls() {
    let sid = std::fs::read_to_string(repo("../shared/data/harper-valley/sids.txt")).unwrap();
    let sid = sid.split_whitespace().next().unwrap().to_owned();
    earshot()
        .args(["rules", "check"])
        .arg(repo("rulesets/banking.yaml"))
        .arg("--transcript")
        .arg(repo(&format!(
            "../shared/data/harper-valley/transcript/{sid}.json"
        )))
        .assert()
        .success()
        .stdout(predicate::str::contains("done  greeting-bank-name"))
        .stdout(predicate::str::contains("call ended"));
}

#[test]
fn a_broken_ruleset_names_file_line_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yaml");
    std::fs::write(
        &file,
        "id: broken\nversion: 1\nrules:\n  - id: no-guarantee\n    kind: prohibited\n    severity: critical\n    message: no\n    match: { phrases: [guarantee] }\n  - id: no-guarantee\n    kind: prohibited\n    severity: critical\n    message: again\n    match: { phrases: [promise] }\n",
    )
    .unwrap();
    earshot()
        .args(["rules", "check"])
        .arg(&file)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("broken.yaml:9"))
        .stderr(predicate::str::contains("no-guarantee"));
    earshot()
        .args(["rules", "check", "/nonexistent/rules.yaml"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "/nonexistent/rules.yaml is not a file",
        ));
}

/// The project's transcripts through the default rulesets: transcript in → what fires out.
#[test]
fn rules_check_on_every_project_transcript() {
    let table: &[(&str, &str, &str, &[&str])] = &[
        (
            "home-services",
            "hvac-booking-guarantee",
            "1 alerts (1 critical, 0 warning, 0 info); checklist 5 done, 0 missed; 1 cards",
            &["ALERT CRITICAL no-guarantee", "CARD  Quoting a price"],
        ),
        (
            "home-services",
            "hvac-lead-no-booking",
            "0 alerts (0 critical, 0 warning, 0 info); checklist 4 done, 1 missed; 1 cards",
            &[
                "CARD  Competitor mentioned",
                "done  offer-appointment",
                "MISSED confirm-service-address",
            ],
        ),
        (
            "home-services",
            "spam-call",
            "0 alerts (0 critical, 0 warning, 0 info); checklist 1 done, 4 missed; 0 cards",
            &["MISSED recording-consent", "MISSED offer-appointment"],
        ),
        (
            "home-services",
            "angry-cancellation",
            "1 alerts (1 critical, 0 warning, 0 info); checklist 4 done, 1 missed; 2 cards",
            &[
                "CARD  Customer wants to cancel",
                "CARD  Customer is upset",
                "done  confirm-service-address",
            ],
        ),
        (
            "banking",
            "bank-card-replacement",
            "0 alerts (0 critical, 0 warning, 0 info); checklist 4 done, 1 missed; 1 cards",
            &[
                "done  verify-identity",
                "CARD  Lost, stolen or fraud",
                "date of birth is [DOB]",
                "[CARD]",
            ],
        ),
    ];
    for (ruleset, transcript, summary, lines) in table {
        let text = stdout(
            earshot()
                .args(["rules", "check"])
                .arg(repo(&format!("rulesets/{ruleset}.yaml")))
                .arg("--transcript")
                .arg(repo(&format!("transcripts/{transcript}.json"))),
        );
        assert!(
            text.contains(&format!("summary: {summary}")),
            "{transcript}:\n{text}"
        );
        for line in *lines {
            assert!(text.contains(line), "{transcript}: no {line:?} in\n{text}");
        }
    }
}

/// An operator makes a tenant and tokens from the command line; the tokens work on the API.
#[tokio::test]
async fn tenants_and_tokens_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let out = stdout(earshot().args([
        "tenants",
        "create",
        "acme-hvac",
        "--name",
        "Acme HVAC",
        "--data-dir",
        data,
    ]));
    assert!(out.contains("created tenant acme-hvac"), "{out}");
    let admin = out
        .split_whitespace()
        .find(|w| w.starts_with("esk_"))
        .expect("a token")
        .to_owned();
    earshot()
        .args(["tenants", "create", "acme-hvac", "--data-dir", data])
        .assert()
        .failure()
        .stderr(predicate::str::contains("tenant acme-hvac already exists"));
    earshot()
        .args([
            "tokens",
            "create",
            "--tenant",
            "acme-hvac",
            "--role",
            "boss",
            "--name",
            "x",
            "--data-dir",
            data,
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "admin, supervisor, agent, service",
        ));
    let agent = stdout(earshot().args([
        "tokens",
        "create",
        "--tenant",
        "acme-hvac",
        "--role",
        "agent",
        "--name",
        "bob",
        "--data-dir",
        data,
    ]));
    let agent = agent.trim().to_owned();
    assert!(agent.starts_with("esk_") && agent.len() == 44, "{agent}");
    let list = stdout(earshot().args(["tenants", "list", "--data-dir", data]));
    assert!(
        list.contains("acme-hvac") && list.contains("Acme HVAC"),
        "{list}"
    );

    // The server on that store: no first-start tenant (one exists); the tokens work.
    let url = format!("sqlite://{data}/earshot.db");
    let store = store::open_store(&url, store::StoreConfig::default())
        .await
        .unwrap();
    let app = crate::helpers::spawn_app(store).await;
    assert!(
        app.admin.is_empty(),
        "no default tenant on a store that has one"
    );
    let (status, body) = app.get("/api/v1/rulesets", &agent).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["active"]["id"], "home-services");
    let (status, _) = app
        .post(
            "/api/v1/tokens",
            &admin,
            serde_json::json!({"role": "agent", "name": "carol"}),
        )
        .await;
    assert_eq!(status, 201);
    app.stop().await.unwrap();
}
