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
    #[cfg(target_os = "linux")]
    {
        // The assist worker's generations run on a thread of their own, at nice 10 and
        // under SCHED_IDLE by default (`--assist-sched normal` would keep the normal policy).
        let (policy, nice) = assist_thread_priority(child.id());
        assert_eq!(
            policy, 5,
            "the generation thread's policy is SCHED_IDLE (5)"
        );
        assert!(nice >= 10, "the generation thread's nice value: {nice}");
    }
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

/// The scheduling policy and nice value of the process's `earshot-assist` thread, from
/// `/proc` (fields 41 and 19 of its `stat`).
#[cfg(target_os = "linux")]
fn assist_thread_priority(pid: u32) -> (i64, i64) {
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let task = task.unwrap().path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if comm.trim() != "earshot-assist" {
            continue;
        }
        let stat = std::fs::read_to_string(task.join("stat")).unwrap();
        // The fields after the command name (which is in parentheses) start at field 3.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        return (
            fields[41 - 3].parse().unwrap(),
            fields[19 - 3].parse().unwrap(),
        );
    }
    panic!("no earshot-assist thread in process {pid}");
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

/// `--llm-ca-cert` is read and checked at start: a missing file or one with no certificate
/// stops `serve` with a message naming it, before anything is opened.
#[test]
fn a_bad_llm_ca_cert_stops_the_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not-a-cert.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let serve = |ca: &std::path::Path| {
        let mut c = earshot();
        c.args(["serve", "--listen", "127.0.0.1:0"])
            .args([
                "--llm-base-url",
                "https://127.0.0.1:1/v1",
                "--llm-model",
                "m",
            ])
            .arg("--llm-ca-cert")
            .arg(ca)
            .env("EARSHOT_DATA_DIR", dir.path().join("data"))
            .timeout(std::time::Duration::from_secs(30));
        c
    };
    serve(&dir.path().join("missing.pem"))
        .assert()
        .failure()
        .stderr(predicate::str::contains("--llm-ca-cert"))
        .stderr(predicate::str::contains("missing.pem"));
    serve(&not_pem)
        .assert()
        .failure()
        .stderr(predicate::str::contains("no PEM certificate"));
    earshot()
        .args(["serve", "--listen", "127.0.0.1:0", "--llm-ca-cert"])
        .arg(&not_pem)
        .env("EARSHOT_DATA_DIR", dir.path().join("data"))
        .timeout(std::time::Duration::from_secs(30))
        .assert()
        .failure()
        .stderr(predicate::str::contains("need --llm-base-url"));
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

#[tokio::test]
async fn events_step_prints_what_each_event_changed() {
    let db = TestStore::sqlite();
    let call = seed_call(&db).await.to_string();

    let text = stdout(
        earshot()
            .args(["events", &call, "--step"])
            .env("DATABASE_URL", &db.url),
    );
    assert!(
        text.contains(&format!("call {call}: all 4 events, step by step")),
        "{text}"
    );
    // seq, event, then what changed in the state and what the event says.
    for line in [
        "    1 call_started             live — tenant=acme-hvac agent=agent-7",
        "    2 segment_added            transcript 1 — seg-1 customer: my ac stopped cooling last night",
        "    3 segment_added            transcript 2 — seg-2 agent: i guarantee we'll have it fixed today",
        "    4 alert_raised             alerts 1 (1 open) — Critical no-guarantee: Never guarantee an outcome",
    ] {
        assert!(text.contains(line), "no {line:?} in\n{text}");
    }
    assert!(text.contains("state at seq 4: Live"), "{text}");

    // Up to a seq, and as JSON lines: one per event, with the state's counts after it.
    let out = stdout(
        earshot()
            .args(["events", &call, "--step", "--at", "3", "--json"])
            .env("DATABASE_URL", &db.url),
    );
    let docs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON document per line"))
        .collect();
    assert_eq!(docs.len(), 3, "{out}");
    assert_eq!(docs[2]["seq"], 3);
    assert_eq!(docs[2]["event"]["event"]["type"], "segment_added");
    assert_eq!(docs[2]["state"]["segments"], 2);
    assert_eq!(docs[2]["state"]["alerts"], 0);
    assert_eq!(docs[0]["state"]["status"], "live");

    earshot()
        .args(["events", &call, "--follow", "--at", "2"])
        .env("DATABASE_URL", &db.url)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot be used with"));
}

/// The call's ending and summary, as the pipeline and the assist worker would append them.
async fn end_with_summary(store: &dyn store::EventStore, call: domain::CallId, after: u64) {
    use domain::event::{CallEnded, Disposition, EndReason, Summary, SummaryGenerated};
    use domain::{CallEvent, NewEvent, Seq, TenantId, testkit};
    let tenant = TenantId::parse("acme-hvac").unwrap();
    let events = [
        testkit::segment(3, "no that's everything thanks", true),
        CallEvent::CallEnded(CallEnded {
            reason: EndReason::Completed,
            by: domain::ActorId::parse("agent-7").unwrap(),
        }),
        CallEvent::SummaryGenerated(SummaryGenerated {
            summary: Summary {
                reason_for_call: "The AC stopped cooling.".into(),
                actions_taken: vec!["Booked a visit.".into()],
                next_steps: vec![],
            },
            disposition: Disposition::Booked,
            confidence: 0.8,
            provider: "offline".into(),
            model: "extractive-v1".into(),
        }),
    ];
    for (version, event) in (after..).zip(events) {
        // One at a time, a little apart, as a live call's events come.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        store
            .append(
                call,
                &tenant,
                store::ExpectedVersion::Exact(Seq::new(version)),
                vec![NewEvent::new(event)],
            )
            .await
            .unwrap();
    }
}

/// Starts `earshot events CALL --follow ARGS`; answers the child and a channel of its
/// stdout lines.
fn follow(
    db: &TestStore,
    call: &str,
    args: &[&str],
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("earshot"))
        .args(["events", call, "--follow"])
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("EARSHOT_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in out.lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Lines until one contains `needle` (10 s at most), all of them returned.
fn lines_until(rx: &std::sync::mpsc::Receiver<String>, needle: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no line with {needle:?} within 10 s: {seen:#?}"));
        let done = line.contains(needle);
        seen.push(line);
        if done {
            return seen;
        }
    }
}

/// Waits (10 s at most) for the child to exit; answers its status.
fn exits(child: &mut std::process::Child) -> std::process::ExitStatus {
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("the follower did not exit within 10 s");
}

/// `--follow` prints the events so far, then each new one as another process commits it,
/// and stops by itself once the call has ended and its summary arrived.
async fn follow_until_the_summary(db: &TestStore) {
    let call = seed_call(db).await;
    let call_s = call.to_string();
    let (mut child, rx) = follow(db, &call_s, &[]);
    let before = lines_until(&rx, "alert_raised");
    assert!(
        before[0].contains("then new ones as they come"),
        "{before:#?}"
    );
    let store = db.open().await;
    end_with_summary(store.as_ref(), call, 4).await;
    let mut after = lines_until(&rx, "state at seq 7: Ended");
    assert!(exits(&mut child).success());
    // The rest of its output, up to the end of the pipe.
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(5)) {
        after.push(line);
    }
    let text = after.join("\n");
    for needle in [
        "segment_added",
        "no that's everything thanks",
        "call_ended",
        "summary_generated",
        "disposition: Booked",
    ] {
        assert!(text.contains(needle), "no {needle:?} in\n{text}");
    }

    // With --step --json: one document per event, old and new, the last with the summary.
    let call = seed_call(db).await;
    let (mut child, rx) = follow(db, &call.to_string(), &["--step", "--json"]);
    lines_until(&rx, "\"seq\":4");
    end_with_summary(store.as_ref(), call, 4).await;
    let last = lines_until(&rx, "\"seq\":7").pop().unwrap();
    let doc: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(doc["event"]["event"]["type"], "summary_generated");
    assert_eq!(doc["state"]["summary"], true);
    assert_eq!(doc["state"]["disposition"], "booked (80%)");
    assert!(exits(&mut child).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_follow_until_the_summary_sqlite() {
    let db = TestStore::sqlite();
    follow_until_the_summary(&db).await;
    db.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_follow_until_the_summary_postgres() {
    let Some(db) = TestStore::postgres("api::events_follow_until_the_summary_postgres").await
    else {
        return;
    };
    follow_until_the_summary(&db).await;
    db.finish().await;
}

/// A call that goes on is followed until Ctrl-C or SIGTERM, which ends it cleanly.
#[tokio::test]
async fn events_follow_stops_on_sigterm() {
    let db = TestStore::sqlite();
    let call = seed_call(&db).await.to_string();
    let (mut child, rx) = follow(&db, &call, &[]);
    lines_until(&rx, "alert_raised");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "still following");
    StdCommand::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(exits(&mut child).success());
}
