use std::net::SocketAddr;
use std::sync::Arc;

use domain::{CallEvent, CallId, NewEvent, TenantId, testkit};
use earshot::server::Application;
use store::testkit::TestStore;
use store::{EventStore, ExpectedVersion};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub task: JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await.expect("the server task does not panic")
    }
}

/// Builds the server on port 0 over `store` and runs it in the background.
pub async fn spawn_app(store: Arc<dyn EventStore>) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        earshot::telemetry::init(earshot::telemetry::LogFormat::Pretty);
    }
    let app = Application::build("127.0.0.1:0".parse().unwrap(), store)
        .await
        .expect("the app builds");
    let addr = app.addr();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run_until(shutdown.clone()));
    TestApp {
        addr,
        shutdown,
        task,
    }
}

/// A finished call with three segments and an alert.
pub async fn seed_call(db: &TestStore) -> CallId {
    let store = db.open().await;
    let call = CallId::new();
    let events: Vec<CallEvent> = vec![
        testkit::started("acme-hvac", "agent-7"),
        testkit::segment(1, "my ac stopped cooling last night", true),
        testkit::segment(2, "i guarantee we'll have it fixed today", true),
        testkit::alert(),
    ];
    store
        .append(
            call,
            &TenantId::parse("acme-hvac").unwrap(),
            ExpectedVersion::Exact(domain::Seq::ZERO),
            events.into_iter().map(NewEvent::new).collect(),
        )
        .await
        .unwrap();
    call
}
