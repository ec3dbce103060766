//! Running a compiled ruleset over a call: segments in, domain events out.

use domain::event::{
    AlertRaised, CallEvent, ChecklistItemCompleted, ChecklistItemMissed, GuidanceCardShown,
    MissReason, RuleRef, Speaker,
};
use domain::ids::{AlertId, CallId, CardId, LanguageTag, SegmentId};
use uuid::Uuid;

use crate::compile::{Engine, Role};
use crate::fold::fold_into;
use crate::ruleset::RuleKind;
use crate::state::{CallRules, ItemState, Tail};

/// One transcript segment as the engine sees it: already redacted, final.
#[derive(Clone, Copy, Debug)]
pub struct SegmentInput<'a> {
    pub segment_id: &'a SegmentId,
    pub speaker: Speaker,
    pub text: &'a str,
    /// Milliseconds since the call started.
    pub start_ms: u64,
    pub end_ms: u64,
}

/// The namespace of the UUIDv5 ids of alerts and cards. Changing it changes every id a replay
/// produces: never change it.
const ID_NAMESPACE: Uuid = Uuid::from_u128(0x3c1e_93a4_5b7d_4f06_a2c8_e15f_7d90_b64e);

/// Where a match of one pattern lies in the searched text, as byte offsets of its words
/// (without the spaces that pad patterns).
#[derive(Clone, Copy, Debug)]
struct Hit {
    rule: u32,
    role: Role,
    start: usize,
    end: usize,
}

impl Engine {
    /// The state of a new call in `language` (a BCP 47 tag; rules limited to other languages
    /// stay silent, and their checklist items are not expected).
    pub fn new_call(&self, language: &LanguageTag) -> CallRules {
        CallRules::new(self.reference.clone(), language.clone())
    }

    /// Evaluates one segment: the time deadlines that passed by its start, then every rule
    /// in one pass over its folded text (joined to the end of the same speaker's previous
    /// segment, so a phrase split across the two is found, once). Segments after
    /// [`Engine::on_call_end`] are ignored.
    pub fn on_segment(
        &self,
        state: &mut CallRules,
        call: CallId,
        seg: &SegmentInput<'_>,
    ) -> Vec<CallEvent> {
        let mut events = Vec::new();
        if state.ended {
            return events;
        }
        self.deadlines(state, seg.start_ms, &mut events);

        let mut hay = String::with_capacity(seg.text.len() + 64);
        let mut starts = Vec::with_capacity(32);
        hay.push(' ');
        if let Some(tail) = state.tail(seg.speaker)
            && seg.start_ms.saturating_sub(tail.end_ms) <= self.split_window_ms
        {
            for word in tail.words.split(' ') {
                starts.push(hay.len());
                hay.push_str(word);
                hay.push(' ');
            }
        }
        let boundary = hay.len();
        fold_into(seg.text, &mut hay, &mut starts);
        if hay.len() == boundary {
            // Nothing but noise or punctuation: nothing to match, and the speaker's previous
            // words stay the tail.
            return events;
        }

        let hits = self.scan(&hay, &state.language);
        let mut firing: Vec<(usize, u32)> = Vec::new();
        for group in hits.chunk_by(|a, b| a.rule == b.rule) {
            let r = group[0].rule;
            if !self.may_fire(r, state, seg.speaker, seg.start_ms) {
                continue;
            }
            if let Some(end) = self.first_match_end(r, group, boundary, &starts) {
                firing.push((end, r));
            }
        }
        // In the order the speaker said them; rules matched at the same word go in file order.
        firing.sort_unstable();
        for (_, r) in firing {
            self.fire(r, state, call, seg, &mut events);
        }

        let keep = self.tail_words.min(starts.len());
        let tail = (keep > 0).then(|| Tail {
            words: hay[starts[starts.len() - keep]..hay.len() - 1].to_owned(),
            end_ms: seg.end_ms,
        });
        state.set_tail(seg.speaker, tail);
        events
    }

    /// Advances the call clock to `now_ms`: required items whose time deadline passed are
    /// missed. Cheap; call it on a timer or before each segment. (`call` is unused today; every
    /// entry point takes it so that events can come to need it without an API change.)
    pub fn on_clock(&self, state: &mut CallRules, _call: CallId, now_ms: u64) -> Vec<CallEvent> {
        let mut events = Vec::new();
        if !state.ended {
            self.deadlines(state, now_ms, &mut events);
        }
        events
    }

    /// Ends the call: every required item still open (and applicable to the call's language)
    /// is missed. Idempotent.
    pub fn on_call_end(&self, state: &mut CallRules, _call: CallId) -> Vec<CallEvent> {
        let mut events = Vec::new();
        if state.ended {
            return events;
        }
        for &r in &self.required {
            self.miss(r, state, MissReason::CallEnded, &mut events);
        }
        state.ended = true;
        events
    }

    /// Every pattern and regex match in `hay`, sorted by rule then position.
    fn scan(&self, hay: &str, language: &LanguageTag) -> Vec<Hit> {
        let mut hits = Vec::new();
        if let Some(ac) = &self.automaton {
            for m in ac.find_overlapping_iter(hay) {
                let info = self.patterns[m.pattern().as_usize()];
                let start = m.start() + 1;
                let end = if info.trailing_space {
                    m.end() - 1
                } else {
                    m.end()
                };
                for u in &self.uses[info.uses_start as usize..info.uses_end as usize] {
                    hits.push(Hit {
                        rule: u.rule,
                        role: u.role,
                        start,
                        end,
                    });
                }
            }
        }
        if !self.regexes.is_empty() {
            let mut push = |rule: u32, start: usize, end: usize| {
                hits.push(Hit {
                    rule,
                    role: Role::Phrase,
                    start,
                    end,
                });
            };
            if hay.is_ascii() {
                for i in self.ascii.set.matches(hay.as_bytes()).iter() {
                    let re = &self.regexes[self.ascii.members[i]];
                    if let Some(ascii) = &re.ascii {
                        for m in ascii.find_iter(hay.as_bytes()) {
                            push(re.rule, m.start(), m.end());
                        }
                    }
                }
                if !self.ascii.rest_members.is_empty() {
                    for i in self.ascii.rest.matches(hay).iter() {
                        let re = &self.regexes[self.ascii.rest_members[i]];
                        for m in re.unicode.find_iter(hay) {
                            push(re.rule, m.start(), m.end());
                        }
                    }
                }
            } else {
                let (set, members) = self.unicode.for_language(language);
                for i in set.matches(hay).iter() {
                    let re = &self.regexes[members[i]];
                    for m in re.unicode.find_iter(hay) {
                        push(re.rule, m.start(), m.end());
                    }
                }
            }
        }
        hits.sort_unstable_by_key(|h| (h.rule, h.start, h.end));
        hits
    }

    /// Whether rule `r` could fire now, before looking at where it matched.
    fn may_fire(&self, r: u32, state: &CallRules, speaker: Speaker, now_ms: u64) -> bool {
        let rule = &self.rules[r as usize];
        if !rule.speaker.accepts(speaker) || !rule.speaks(&state.language) {
            return false;
        }
        let id = &rule.rule_ref.rule_id;
        if let RuleKind::Required { .. } = rule.kind {
            return !state.items.contains_key(id);
        }
        match state.fires.get(id) {
            None => true,
            Some(f) => {
                rule.max_fires.is_none_or(|max| f.count < max)
                    && (rule.cooldown_ms == 0
                        || now_ms.saturating_sub(f.last_ms) >= rule.cooldown_ms)
            }
        }
    }

    /// The end of the earliest match of rule `r` that ends in the current segment (past
    /// `boundary`) and that no `except` phrase overlaps.
    fn first_match_end(
        &self,
        r: u32,
        hits: &[Hit],
        boundary: usize,
        starts: &[usize],
    ) -> Option<usize> {
        let excluded = |h: &Hit| {
            hits.iter()
                .any(|e| e.role == Role::Except && e.start < h.end && h.start < e.end)
        };
        let mut best = hits
            .iter()
            .filter(|h| h.role == Role::Phrase && h.end > boundary && !excluded(h))
            .map(|h| h.end)
            .min();
        for (k, &within) in self.rules[r as usize].near.iter().enumerate() {
            let k = u16::try_from(k).unwrap_or(u16::MAX);
            for a in hits
                .iter()
                .filter(|h| h.role == Role::NearA(k) && !excluded(h))
            {
                for b in hits
                    .iter()
                    .filter(|h| h.role == Role::NearB(k) && !excluded(h))
                {
                    let end = a.end.max(b.end);
                    if end > boundary
                        && best.is_none_or(|e| end < e)
                        && words_between(a, b, starts) <= within as usize
                    {
                        best = Some(end);
                    }
                }
            }
        }
        best
    }

    fn fire(
        &self,
        r: u32,
        state: &mut CallRules,
        call: CallId,
        seg: &SegmentInput<'_>,
        events: &mut Vec<CallEvent>,
    ) {
        let rule = &self.rules[r as usize];
        let rule_ref = &rule.rule_ref;
        if matches!(rule.kind, RuleKind::Required { .. })
            && state.items.contains_key(&rule_ref.rule_id)
        {
            // Missed earlier in this same segment, by a rule it had to precede.
            return;
        }
        let n = state.record_fire(&rule_ref.rule_id, seg.start_ms);
        match &rule.kind {
            RuleKind::Prohibited {
                severity,
                message,
                correction,
            } => {
                let uuid = event_uuid("alert", call, rule_ref, seg.segment_id, n);
                events.push(CallEvent::AlertRaised(AlertRaised {
                    // A v5 UUID carries version bits, so it is never the nil UUID.
                    alert_id: AlertId::from_uuid(uuid).expect("a v5 UUID is never nil"),
                    rule: rule_ref.clone(),
                    severity: *severity,
                    message: message.clone(),
                    correction: correction.clone(),
                    segment_id: Some(seg.segment_id.clone()),
                }));
            }
            RuleKind::Required { .. } => {
                state.items.insert(
                    rule_ref.rule_id.clone(),
                    ItemState::Completed {
                        segment_id: seg.segment_id.clone(),
                    },
                );
                events.push(CallEvent::ChecklistItemCompleted(ChecklistItemCompleted {
                    item: rule_ref.clone(),
                    segment_id: seg.segment_id.clone(),
                }));
            }
            RuleKind::Trigger { title, body } => {
                let uuid = event_uuid("card", call, rule_ref, seg.segment_id, n);
                events.push(CallEvent::GuidanceCardShown(GuidanceCardShown {
                    card_id: CardId::from_uuid(uuid).expect("a v5 UUID is never nil"),
                    rule: rule_ref.clone(),
                    title: title.clone(),
                    body: body.clone(),
                    segment_id: Some(seg.segment_id.clone()),
                }));
            }
        }
        for &item in &self.must_precede[r as usize] {
            let reason = MissReason::PrecededBy {
                rule_id: rule_ref.rule_id.clone(),
            };
            self.miss(item, state, reason, events);
        }
    }

    fn deadlines(&self, state: &mut CallRules, now_ms: u64, events: &mut Vec<CallEvent>) {
        for &(r, after_ms) in &self.timed {
            if now_ms > after_ms {
                self.miss(r, state, MissReason::Deadline { after_ms }, events);
            }
        }
    }

    /// Marks required item `r` missed, if it is open and applies to the call.
    fn miss(&self, r: u32, state: &mut CallRules, reason: MissReason, events: &mut Vec<CallEvent>) {
        let rule = &self.rules[r as usize];
        let id = &rule.rule_ref.rule_id;
        if state.items.contains_key(id) || !rule.speaks(&state.language) {
            return;
        }
        state.items.insert(
            id.clone(),
            ItemState::Missed {
                reason: reason.clone(),
            },
        );
        events.push(CallEvent::ChecklistItemMissed(ChecklistItemMissed {
            item: rule.rule_ref.clone(),
            reason,
        }));
    }
}

/// How many words lie strictly between two matches; 0 when they touch or overlap.
fn words_between(a: &Hit, b: &Hit, starts: &[usize]) -> usize {
    let word = |pos: usize| starts.partition_point(|&s| s <= pos).saturating_sub(1);
    let (a_first, a_last) = (word(a.start), word(a.end.saturating_sub(1)));
    let (b_first, b_last) = (word(b.start), word(b.end.saturating_sub(1)));
    if a_last < b_first {
        b_first - a_last - 1
    } else if b_last < a_first {
        a_first - b_last - 1
    } else {
        0
    }
}

/// A deterministic id for the `n`th fire of a rule in a call, so a replay of the call emits
/// byte-identical events.
fn event_uuid(kind: &str, call: CallId, rule: &RuleRef, segment: &SegmentId, n: u32) -> Uuid {
    // Newlines cannot occur in any of the parts (ids reject control characters), so the
    // joined name is unambiguous.
    let name = format!(
        "{kind}\n{}\n{}\n{}\n{}\n{}\n{n}",
        call.as_uuid(),
        rule.ruleset.id,
        rule.ruleset.version,
        rule.rule_id,
        segment
    );
    Uuid::new_v5(&ID_NAMESPACE, name.as_bytes())
}
