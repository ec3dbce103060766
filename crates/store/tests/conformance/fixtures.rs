//! Events to append in tests.

use domain::event::{
    AlertRaised, CallSource, CallStarted, RuleRef, RulesetRef, SegmentAdded, Severity, Speaker,
};
use domain::{
    AgentId, AlertId, CallEvent, LanguageTag, NewEvent, RuleId, RulesetId, SegmentId, TenantId,
};

pub fn tenant() -> TenantId {
    TenantId::parse("acme-hvac").unwrap()
}

pub fn started() -> NewEvent {
    NewEvent::new(CallEvent::CallStarted(CallStarted {
        tenant: tenant(),
        source: CallSource::Replay,
        agent: AgentId::parse("agent-7").unwrap(),
        ruleset: RulesetRef {
            id: RulesetId::parse("home-services").unwrap(),
            version: 1,
        },
        language: LanguageTag::parse("en-US").unwrap(),
    }))
}

pub fn segment(n: u64, text: &str) -> NewEvent {
    NewEvent::new(CallEvent::SegmentAdded(SegmentAdded {
        segment_id: SegmentId::parse(format!("seg-{n}")).unwrap(),
        speaker: if n % 2 == 0 {
            Speaker::Agent
        } else {
            Speaker::Customer
        },
        text: text.to_owned(),
        start_ms: n * 1_000,
        end_ms: n * 1_000 + 800,
        is_final: true,
        confidence: Some(0.9),
        redactions: vec![],
    }))
}

pub fn alert() -> NewEvent {
    NewEvent::new(CallEvent::AlertRaised(AlertRaised {
        alert_id: AlertId::new(),
        rule: RuleRef {
            rule_id: RuleId::parse("no-guarantee").unwrap(),
            ruleset: RulesetRef {
                id: RulesetId::parse("home-services").unwrap(),
                version: 1,
            },
        },
        severity: Severity::Critical,
        message: "Never guarantee an outcome".into(),
        correction: Some("We'll do everything we can to get it working today.".into()),
        segment_id: Some(SegmentId::parse("seg-1").unwrap()),
    }))
}
