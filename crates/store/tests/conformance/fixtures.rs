//! Events to append in tests (built by `domain::testkit`).

use domain::testkit;
use domain::{NewEvent, TenantId};

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
