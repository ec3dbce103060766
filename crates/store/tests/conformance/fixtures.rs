//! Events to append in tests (built by `domain::testkit`).

use std::time::Duration;

use domain::testkit;
use domain::{CallId, GlobalPosition, NewEvent, Seq, TenantId};
use store::Wakeup;
use tokio::sync::broadcast::{Receiver, error::RecvError};

pub fn tenant() -> TenantId {
    TenantId::parse("acme-hvac").unwrap()
}

pub fn started() -> NewEvent {
    NewEvent::new(testkit::started("acme-hvac", "agent-7"))
}

pub fn segment(n: u64, text: &str) -> NewEvent {
    NewEvent::new(testkit::segment(n, text, true))
}

pub fn alert() -> NewEvent {
    NewEvent::new(testkit::alert())
}

/// The next `Appended` wake-up for `call` (others are skipped; a lag is not a failure),
/// within 5 s.
pub async fn wakeup_for(rx: &mut Receiver<Wakeup>, call: CallId) -> (Seq, GlobalPosition) {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match rx.recv().await {
                Ok(Wakeup::Appended {
                    call_id,
                    seq,
                    position,
                }) if call_id == call => return (seq, position),
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => panic!("wake-ups closed"),
            }
        }
    })
    .await
    .expect("a wake-up for the call within 5 s")
}
