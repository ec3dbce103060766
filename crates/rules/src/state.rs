//! Per-call engine state. It is plain data: clone it, compare it, serialize it between two
//! segments and carry on from the copy; the engine reads nothing else that changes.

use std::collections::BTreeMap;

use domain::event::{MissReason, RulesetRef, Speaker};
use domain::ids::{LanguageTag, RuleId, SegmentId};
use serde::{Deserialize, Serialize};

/// What the rules engine remembers about one call. Keyed by rule id rather than position, so
/// a serialized state reads on its own and survives rules being reordered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRules {
    pub(crate) ruleset: RulesetRef,
    pub(crate) language: LanguageTag,
    /// Required items that are done with: each is completed or missed once, never both.
    pub(crate) items: BTreeMap<RuleId, ItemState>,
    /// Every rule that fired, how often and when last: cooldowns, max fires, event ids.
    pub(crate) fires: BTreeMap<RuleId, Fires>,
    /// The last words of each speaker's previous segment, for phrases split across two.
    pub(crate) agent_tail: Option<Tail>,
    pub(crate) customer_tail: Option<Tail>,
    pub(crate) ended: bool,
}

/// How a required item ended up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ItemState {
    Completed { segment_id: SegmentId },
    Missed { reason: MissReason },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fires {
    pub count: u32,
    /// Start of the segment it last fired on, in call milliseconds.
    pub last_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tail {
    /// Folded words, single spaces.
    pub words: String,
    /// When the segment they came from ended.
    pub end_ms: u64,
}

impl CallRules {
    pub(crate) fn new(ruleset: RulesetRef, language: LanguageTag) -> Self {
        Self {
            ruleset,
            language,
            items: BTreeMap::new(),
            fires: BTreeMap::new(),
            agent_tail: None,
            customer_tail: None,
            ended: false,
        }
    }

    /// The ruleset version the call started with.
    pub fn ruleset(&self) -> &RulesetRef {
        &self.ruleset
    }

    pub fn language(&self) -> &LanguageTag {
        &self.language
    }

    /// `None` while the item is still open (or does not apply to this call's language).
    pub fn item(&self, rule: &RuleId) -> Option<&ItemState> {
        self.items.get(rule)
    }

    /// How many times `rule` fired in this call.
    pub fn fire_count(&self, rule: &RuleId) -> u32 {
        self.fires.get(rule).map_or(0, |f| f.count)
    }

    /// Whether [`crate::Engine::on_call_end`] ran: later segments are ignored.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    pub(crate) fn tail(&self, speaker: Speaker) -> Option<&Tail> {
        match speaker {
            Speaker::Agent => self.agent_tail.as_ref(),
            Speaker::Customer => self.customer_tail.as_ref(),
        }
    }

    pub(crate) fn set_tail(&mut self, speaker: Speaker, tail: Option<Tail>) {
        match speaker {
            Speaker::Agent => self.agent_tail = tail,
            Speaker::Customer => self.customer_tail = tail,
        }
    }

    /// Counts a fire at `at_ms` and returns the new count.
    pub(crate) fn record_fire(&mut self, rule: &RuleId, at_ms: u64) -> u32 {
        // Look up before inserting: `entry` would clone the id on every fire.
        if let Some(f) = self.fires.get_mut(rule) {
            f.count = f.count.saturating_add(1);
            f.last_ms = at_ms;
            return f.count;
        }
        self.fires.insert(
            rule.clone(),
            Fires {
                count: 1,
                last_ms: at_ms,
            },
        );
        1
    }
}
