// One call, live (#/calls/<id>): the transcript, the guidance (alerts, suggested replies,
// cards, the checklist of required questions) and, once the call has ended, its summary and
// disposition.
//
// Position first: the view loads the call's state (GET /api/v1/calls/{id}, which answers
// its seq), shows it, then follows the call from that seq over the WebSocket. Both paths go
// through `apply`, one event at a time: the state is turned back into the events it folds,
// so a line, an alert or a tick looks the same however it arrived. `live.js` hands `apply`
// each later event exactly once, in seq order; `document.body.dataset.lastSeq` is the seq
// of the last one shown.

import { get, post, put, callPath, ApiError } from './api.js';
import { h, fill, announce, callClock, when, label, copyText } from './dom.js';
import { requiredItems } from './ruleset.js';

const DISPOSITIONS = ['booked', 'lead', 'spam', 'resolved', 'escalated', 'other'];

export function renderSession(root, callId, { live }) {
  const v = skeleton(callId);
  root.replaceChildren(v.el);

  /** What the view knows, folded from the events it applied. */
  const m = {
    info: null,
    status: 'live',
    ended: null,
    summary: null,
    disposition: null,
    lines: new Map(),
    alerts: new Map(),
    /** rule id → { title, status: pending|completed|missed, detail } in ruleset order. */
    checklist: new Map(),
    checklistSource: 'pending',
    suggestions: new Map(),
  };
  let stopped = false;
  let follow = null;

  const setLastSeq = (seq) => {
    document.body.dataset.lastSeq = String(seq);
  };

  async function loadState() {
    const snapshot = await get(callPath(callId));
    if (stopped) return null;
    reset();
    for (const ev of eventsOfState(snapshot.state)) apply(ev, false);
    setLastSeq(snapshot.seq);
    return snapshot;
  }

  function reset() {
    Object.assign(m, {
      info: null,
      status: 'live',
      ended: null,
      summary: null,
      disposition: null,
    });
    m.lines.clear();
    m.alerts.clear();
    m.suggestions.clear();
    for (const item of m.checklist.values()) {
      item.status = 'pending';
      item.detail = '';
    }
    for (const el of [v.transcript, v.critical, v.warnings, v.suggestions, v.cards, v.notes]) {
      el.replaceChildren();
    }
  }

  async function open() {
    let snapshot;
    try {
      snapshot = await loadState();
    } catch (e) {
      if (stopped) return;
      v.loading.hidden = false;
      v.loading.classList.add('form-error');
      v.loading.textContent = e.status === 404 || e.status === 422
        ? 'There is no such call in your tenant.'
        : `Could not load the call: ${e.message}`;
      return;
    }
    if (!snapshot) return;
    v.loading.hidden = true;
    v.grid.hidden = false;
    loadChecklist();
    follow = live.followCall(callId, snapshot.seq, {
      onEvent(msg) {
        apply(msg, true);
        setLastSeq(msg.seq);
      },
      onDraft: draft,
      onSubscribed() {
        v.feedNote.hidden = true;
      },
      async onResync() {
        // Too far behind to replay: start again from the state, then follow from its seq.
        try {
          const s = await loadState();
          if (s) follow.resume(s.seq);
        } catch (e) {
          showFeedNote(`Could not reload the call: ${e.message}`);
        }
      },
      onError(e) {
        showFeedNote(`Live updates stopped: ${e.message}`);
      },
    });
  }

  function showFeedNote(text) {
    v.feedNote.textContent = text;
    v.feedNote.hidden = false;
  }

  // --- events -------------------------------------------------------------------------

  function apply(msg, isNew) {
    const d = msg.data ?? {};
    switch (msg.kind) {
      case 'call_started':
        m.info = { ...d, started_at: msg.recorded_at };
        renderHead();
        break;
      case 'segment_added':
        line(d, msg.seq);
        if (d.speaker === 'customer' && d.is_final) dropDrafts();
        break;
      case 'alert_raised':
        alert(d, msg.seq, isNew);
        break;
      case 'alert_acknowledged':
        acknowledged(d.alert_id, d.by);
        break;
      case 'checklist_item_completed': {
        const seg = m.lines.get(d.segment_id);
        check(d.item.rule_id, 'completed', seg ? `at ${callClock(seg.data.start_ms)}` : '');
        break;
      }
      case 'checklist_item_missed':
        check(d.item.rule_id, 'missed', missReason(d.reason));
        break;
      case 'guidance_card_shown':
        card(d, msg.seq);
        break;
      case 'reply_suggested':
        suggestion(d);
        break;
      case 'suggestion_feedback':
        feedback(d.suggestion_id, d.verdict, d.by);
        break;
      case 'generation_failed':
        failure(d);
        break;
      case 'call_ended':
        m.status = 'ended';
        m.ended = { ...d, at: msg.recorded_at };
        dropDrafts();
        renderHead();
        renderSummary();
        if (isNew) announce('The call has ended. The summary follows.');
        break;
      case 'summary_generated':
        m.summary = d;
        if (!m.disposition?.overridden_by) {
          m.disposition = { disposition: d.disposition, overridden_by: null, note: null };
        }
        renderSummary();
        if (isNew) announce(`Summary ready. Disposition: ${label(d.disposition)}.`);
        break;
      case 'disposition_overridden':
        m.disposition = { disposition: d.to, overridden_by: d.by, note: d.note };
        renderSummary();
        break;
      default:
        break;
    }
  }

  // --- transcript ---------------------------------------------------------------------

  function line(d, seq) {
    const stick = nearBottom(v.transcriptBox);
    const el = h(
      'li',
      {
        class: `line ${d.speaker}${d.is_final ? '' : ' interim'}`,
        'data-testid': 'transcript-line',
        'data-seq': seq,
        'data-segment-id': d.segment_id,
        'data-speaker': d.speaker,
      },
      h('span', { class: 'who', text: d.speaker === 'agent' ? 'Agent' : 'Customer' }),
      h('span', { class: 'clock', text: callClock(d.start_ms) }),
      h('p', { class: 'text' }, redactedText(d.text, d.redactions)),
    );
    const old = m.lines.get(d.segment_id);
    if (old) {
      for (const flag of old.el.querySelectorAll('.flag')) el.append(flag);
      if (old.el.classList.contains('flagged')) el.classList.add('flagged');
      old.el.replaceWith(el);
    } else {
      v.transcript.append(el);
    }
    m.lines.set(d.segment_id, { data: d, el });
    for (const a of m.alerts.values()) {
      if (a.data.segment_id === d.segment_id && !old) flagLine(a.data);
    }
    v.transcriptCount.textContent = `${m.lines.size} lines`;
    if (stick) v.transcriptBox.scrollTop = v.transcriptBox.scrollHeight;
  }

  function flagLine(a) {
    const l = m.lines.get(a.segment_id);
    if (!l) return;
    l.el.classList.add('flagged', `flag-${a.severity}`);
    l.el.append(h('span', { class: `flag ${a.severity}`, text: a.rule.rule_id }));
  }

  // --- alerts -------------------------------------------------------------------------

  function alert(d, seq, isNew) {
    if (m.alerts.has(d.alert_id)) return;
    const ack = h('button', {
      type: 'button',
      class: d.severity === 'critical' ? 'ack on-danger' : 'ack',
      'data-testid': 'alert-ack',
      text: 'Acknowledge',
      'aria-label': `Acknowledge: ${d.message}`,
      onclick: () => acknowledge(d.alert_id),
    });
    const status = h('span', { class: 'ack-status', 'data-testid': 'alert-ack-status', role: 'status' });
    const seg = d.segment_id ? m.lines.get(d.segment_id) : null;
    const el = h(
      'article',
      {
        class: `alert ${d.severity}`,
        tabindex: '-1',
        'data-testid': 'alert',
        'data-severity': d.severity,
        'data-alert-id': d.alert_id,
        'data-rule-id': d.rule.rule_id,
        'data-seq': seq,
        'aria-label': `${label(d.severity)} alert`,
      },
      h(
        'header',
        {},
        h('span', { class: 'sev', text: d.severity.toUpperCase() }),
        h('span', { class: 'rule', text: d.rule.rule_id }),
        seg ? h('span', { class: 'at', text: `at ${callClock(seg.data.start_ms)}` }) : null,
      ),
      h('p', { class: 'msg', 'data-testid': 'alert-message', text: d.message }),
      d.correction
        ? h('p', { class: 'fix', 'data-testid': 'alert-correction' }, h('span', { class: 'fix-label', text: 'Say instead: ' }), d.correction)
        : null,
      h('div', { class: 'actions' }, ack, status),
    );
    m.alerts.set(d.alert_id, { data: d, el, ack, status });
    const list = d.severity === 'critical' ? v.critical : v.warnings;
    list.prepend(el);
    flagLine(d);
    renderAlertCount();
    if (isNew) announce(`${label(d.severity)} alert: ${d.message}${d.correction ? ` Say instead: ${d.correction}` : ''}`);
  }

  async function acknowledge(alertId) {
    const a = m.alerts.get(alertId);
    if (!a || a.acked) return;
    a.ack.disabled = true;
    a.status.textContent = 'Acknowledging…';
    try {
      await post(callPath(callId, `/alerts/${encodeURIComponent(alertId)}/ack`));
      // The event confirms it too; showing it now keeps the panel honest when the feed lags.
      acknowledged(alertId, null);
    } catch (e) {
      a.ack.disabled = false;
      a.status.textContent = `Not acknowledged: ${e.message}`;
    }
  }

  function acknowledged(alertId, by) {
    const a = m.alerts.get(alertId);
    if (!a) return;
    if (a.acked && !by) return;
    const hadFocus = a.el.contains(document.activeElement);
    a.acked = true;
    a.el.classList.add('acked');
    a.el.dataset.acknowledged = 'true';
    a.ack.remove();
    a.status.textContent = by ? `Acknowledged by ${by}` : 'Acknowledged';
    if (hadFocus) a.el.focus();
    renderAlertCount();
  }

  function renderAlertCount() {
    const open = [...m.alerts.values()].filter((a) => !a.acked).length;
    v.alertCount.textContent = m.alerts.size === 0 ? 'None so far' : `${open} open of ${m.alerts.size}`;
    v.alertsEmpty.hidden = m.alerts.size > 0;
  }

  // --- checklist ----------------------------------------------------------------------

  async function loadChecklist() {
    const ref = m.info?.ruleset;
    if (!ref) return;
    try {
      const r = await get(`/api/v1/rulesets/${encodeURIComponent(ref.id)}/versions/${encodeURIComponent(ref.version)}`);
      if (stopped) return;
      const items = requiredItems(r.source ?? '', m.info.language);
      if (items.length === 0) throw new Error('its required items could not be read');
      const known = m.checklist;
      m.checklist = new Map(items.map((i) => [i.id, { title: i.title, status: 'pending', detail: '' }]));
      for (const [id, item] of known) {
        const mine = m.checklist.get(id);
        if (mine) Object.assign(mine, { status: item.status, detail: item.detail });
        else m.checklist.set(id, item);
      }
      m.checklistSource = 'ruleset';
    } catch (e) {
      if (stopped) return;
      m.checklistSource = 'events';
      v.checklistNote.textContent = `The pending items are not shown (${e.message}); items appear as they are completed or missed.`;
      v.checklistNote.hidden = false;
    }
    renderChecklist();
  }

  function check(ruleId, status, detail) {
    const item = m.checklist.get(ruleId) ?? { title: ruleId, status: 'pending', detail: '' };
    item.status = status;
    item.detail = detail;
    m.checklist.set(ruleId, item);
    renderChecklist();
  }

  function renderChecklist() {
    const items = [...m.checklist.entries()];
    const done = items.filter(([, i]) => i.status === 'completed').length;
    v.checklistCount.textContent = items.length ? `${done} of ${items.length} done` : '';
    fill(
      v.checklist,
      items.map(([id, i]) =>
        h(
          'li',
          { class: `check ${i.status}`, 'data-testid': 'checklist-item', 'data-rule-id': id, 'data-status': i.status },
          h('span', { class: 'mark', 'aria-hidden': 'true', text: { completed: '✓', missed: '✗' }[i.status] ?? '○' }),
          h('span', { class: 'title', text: i.title }),
          h('span', { class: 'sr-only', text: ` (${i.status})` }),
          i.detail ? h('span', { class: 'detail', text: i.detail }) : null,
        )),
    );
  }

  // --- cards, suggestions, failures ---------------------------------------------------

  function card(d, seq) {
    v.cards.prepend(
      h(
        'article',
        { class: 'card', 'data-testid': 'guidance-card', 'data-rule-id': d.rule.rule_id, 'data-seq': seq },
        h('h4', { text: d.title }),
        h('p', { text: d.body }),
      ),
    );
    v.cardsEmpty.hidden = true;
  }

  function suggestionEl(id) {
    let s = m.suggestions.get(id);
    if (s) return s;
    const text = h('p', { class: 'text', 'data-testid': 'suggestion-text' });
    const meta = h('span', { class: 'meta' });
    const actions = h('div', { class: 'actions' });
    const status = h('span', { class: 'ack-status', role: 'status' });
    const el = h(
      'article',
      { class: 'suggestion draft', 'data-testid': 'suggestion', 'data-suggestion-id': id, 'data-state': 'draft', 'aria-busy': 'true' },
      text,
      h('footer', {}, meta, actions, status),
    );
    s = { el, text, meta, actions, status, pieces: [], final: null };
    m.suggestions.set(id, s);
    v.suggestions.prepend(el);
    v.suggestionsEmpty.hidden = true;
    return s;
  }

  /** A piece of a suggested reply being written (not in the log; see docs/protocol.md). */
  function draft(msg) {
    const s = suggestionEl(msg.suggestion_id);
    if (s.final) return;
    s.pieces[msg.index] = msg.delta;
    s.text.textContent = s.pieces.join('');
    s.meta.textContent = 'Writing…';
  }

  /** Drafts whose final reply will not come: a newer customer segment or the end made them stale. */
  function dropDrafts() {
    for (const [id, s] of m.suggestions) {
      if (!s.final) {
        s.el.remove();
        m.suggestions.delete(id);
      }
    }
    v.suggestionsEmpty.hidden = m.suggestions.size > 0;
  }

  function suggestion(d) {
    const s = suggestionEl(d.suggestion_id);
    s.final = d;
    s.el.classList.remove('draft');
    s.el.dataset.state = 'final';
    s.el.removeAttribute('aria-busy');
    s.text.textContent = d.text;
    s.meta.textContent = `${d.provider} · ${d.model}${d.latency_ms ? ` · ${d.latency_ms} ms` : ''}`;
    if (!s.verdict) {
      fill(
        s.actions,
        h('button', { type: 'button', class: 'primary small', 'data-testid': 'suggestion-accept', text: 'Accept', onclick: () => give(d.suggestion_id, 'accepted') }),
        h('button', { type: 'button', class: 'quiet small', 'data-testid': 'suggestion-dismiss', text: 'Dismiss', onclick: () => give(d.suggestion_id, 'dismissed') }),
      );
    }
  }

  async function give(id, verdict) {
    const s = m.suggestions.get(id);
    if (!s || s.verdict) return;
    for (const b of s.actions.querySelectorAll('button')) b.disabled = true;
    if (verdict === 'accepted') await copyText(s.final.text, s.text);
    try {
      await post(callPath(callId, `/suggestions/${encodeURIComponent(id)}/feedback`), { verdict });
      feedback(id, verdict, null);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'conflict') {
        feedback(id, verdict, null);
        return;
      }
      for (const b of s.actions.querySelectorAll('button')) b.disabled = false;
      s.status.textContent = `Not sent: ${e.message}`;
    }
  }

  function feedback(id, verdict, by) {
    const s = m.suggestions.get(id);
    if (!s) return;
    if (s.verdict && !by) return;
    const hadFocus = s.el.contains(document.activeElement);
    s.verdict = verdict;
    s.el.dataset.state = verdict;
    s.el.classList.add('answered');
    s.actions.replaceChildren();
    const copied = verdict === 'accepted' ? ' (copied)' : '';
    s.status.textContent = `${label(verdict)}${by ? ` by ${by}` : copied}`;
    if (hadFocus) {
      s.el.setAttribute('tabindex', '-1');
      s.el.focus();
    }
  }

  function failure(d) {
    const what = d.task === 'summary' ? 'The summary' : 'A suggested reply';
    const instead = d.fallback ? `; ${d.fallback} was used instead` : '; nothing was posted instead';
    v.notes.append(
      h('li', {
        class: 'note',
        'data-testid': 'generation-failed',
        text: d.attempts === 0
          ? `${what} was not asked of ${d.provider} (${d.model}): ${d.error}${instead}.`
          : `${what} from ${d.provider} (${d.model}) failed after ${d.attempts} attempt${d.attempts === 1 ? '' : 's'}: ${d.error}${instead}.`,
      }),
    );
    v.notesBox.hidden = false;
  }

  // --- head, end, summary -------------------------------------------------------------

  function renderHead() {
    const i = m.info;
    v.status.textContent = label(m.status);
    v.status.className = `badge ${m.status}`;
    v.status.dataset.status = m.status;
    if (i) {
      fill(
        v.meta,
        h('span', {}, 'Agent ', h('strong', { 'data-testid': 'call-agent', text: i.agent })),
        h('span', { text: `Started ${when(i.started_at)}` }),
        h('span', { text: `Ruleset ${i.ruleset.id} v${i.ruleset.version}` }),
        h('span', { text: `${i.language} · ${i.source}` }),
        m.ended ? h('span', { text: `Ended ${when(m.ended.at)} (${m.ended.reason}, by ${m.ended.by})` }) : null,
      );
    }
    v.end.hidden = m.status !== 'live';
    v.hint.hidden = m.status !== 'live';
  }

  async function end() {
    v.end.disabled = true;
    v.endStatus.textContent = 'Ending…';
    try {
      await post(callPath(callId, '/end'), { reason: 'completed' });
      v.endStatus.textContent = '';
    } catch (e) {
      v.endStatus.textContent = e.code === 'call_ended' || e.status === 409 ? '' : `Could not end the call: ${e.message}`;
    } finally {
      v.end.disabled = false;
    }
  }

  function renderSummary() {
    if (m.status !== 'ended') {
      v.summaryBox.hidden = true;
      return;
    }
    v.summaryBox.hidden = false;
    const s = m.summary;
    if (!s) {
      fill(v.summaryBody, h('p', { class: 'muted', 'data-testid': 'summary-pending', text: 'The call has ended. Writing the summary…' }));
    } else {
      fill(
        v.summaryBody,
        h(
          'dl',
          { class: 'summary-list', 'data-testid': 'summary-body' },
          h('dt', { text: 'Reason for the call' }),
          h('dd', { 'data-testid': 'summary-reason', text: s.summary.reason_for_call }),
          h('dt', { text: 'Actions taken' }),
          h('dd', {}, list(s.summary.actions_taken, 'None recorded.')),
          h('dt', { text: 'Next steps' }),
          h('dd', {}, list(s.summary.next_steps, 'None recorded.')),
        ),
      );
    }
    const d = m.disposition;
    if (!d) {
      fill(v.disposition, h('span', { class: 'muted', text: 'No disposition yet.' }));
      delete v.disposition.dataset.disposition;
    } else {
      v.disposition.dataset.disposition = d.disposition;
      v.disposition.dataset.overridden = d.overridden_by ? 'true' : 'false';
      fill(
        v.disposition,
        'Disposition ',
        h('strong', { class: 'disp', text: label(d.disposition) }),
        d.overridden_by
          ? h('span', { class: 'meta', text: ` set by ${d.overridden_by}${d.note ? `: “${d.note}”` : ''}` })
          : s
            ? h('span', { class: 'meta', text: ` ${Math.round(s.confidence * 100)}% confidence · ${s.provider} (${s.model})` })
            : null,
      );
      if (!v.overrideDirty) v.overrideSelect.value = d.disposition;
    }
    v.overrideForm.hidden = false;
  }

  async function override(ev) {
    ev.preventDefault();
    const body = { disposition: v.overrideSelect.value };
    const note = v.overrideNote.value.trim();
    if (note) body.note = note;
    v.overrideSave.disabled = true;
    v.overrideStatus.textContent = 'Saving…';
    try {
      await put(callPath(callId, '/disposition'), body);
      v.overrideStatus.textContent = 'Saved.';
      v.overrideDirty = false;
      v.overrideNote.value = '';
    } catch (e) {
      v.overrideStatus.textContent = `Not saved: ${e.message}`;
    } finally {
      v.overrideSave.disabled = false;
    }
  }

  v.end.addEventListener('click', end);
  v.overrideForm.addEventListener('submit', override);
  v.overrideSelect.addEventListener('change', () => {
    v.overrideDirty = true;
  });

  open();
  return () => {
    stopped = true;
    follow?.close();
  };
}

function list(items, empty) {
  if (!items?.length) return h('span', { class: 'muted', text: empty });
  return h('ul', {}, items.map((t) => h('li', { text: t })));
}

function missReason(r) {
  switch (r?.kind) {
    case 'call_ended':
      return 'missed: the call ended first';
    case 'deadline':
      return `missed: not done in the first ${Math.round(r.after_ms / 1000)} s`;
    case 'preceded_by':
      return `missed: had to come before ${r.rule_id}`;
    default:
      return 'missed';
  }
}

function nearBottom(el) {
  return el.scrollHeight - el.scrollTop - el.clientHeight < 80;
}

const PLACEHOLDER = /\[(PHONE|EMAIL|CARD|SSN|IBAN|DOB|ADDRESS|NAME|NUMBER)\]/g;

/** The segment's text with each redaction placeholder as a chip. */
function redactedText(text, redactions) {
  const chars = Array.from(text ?? '');
  const spans = (redactions ?? [])
    .filter((r) => Number.isInteger(r.start) && Number.isInteger(r.end) && r.start < r.end && r.end <= chars.length)
    .sort((a, b) => a.start - b.start);
  const out = [];
  let at = 0;
  for (const r of spans) {
    if (r.start < at) continue;
    out.push(chars.slice(at, r.start).join(''));
    out.push(chip(chars.slice(r.start, r.end).join(''), r.kind));
    at = r.end;
  }
  const rest = chars.slice(at).join('');
  // Placeholders without a span (older events, or a span that did not fit) are found by shape.
  let last = 0;
  for (const match of rest.matchAll(PLACEHOLDER)) {
    out.push(rest.slice(last, match.index));
    out.push(chip(match[0], match[1].toLowerCase()));
    last = match.index + match[0].length;
  }
  out.push(rest.slice(last));
  return out.filter((x) => x !== '');
}

function chip(text, kind) {
  return h('mark', { class: 'pii', 'data-testid': 'pii', 'data-kind': kind, title: `${label(kind)} (redacted)`, text });
}

/** The events a call's state folds (GET /api/v1/calls/{id}), in seq order, for `apply`. */
export function eventsOfState(s) {
  const out = [];
  const push = (seq, kind, data, recorded_at) => out.push({ seq, kind, data, recorded_at });
  const i = s.info;
  if (i) {
    push(1, 'call_started', { tenant: i.tenant, source: i.source, agent: i.agent, ruleset: i.ruleset, language: i.language }, i.started_at);
  }
  for (const { seq, ...seg } of s.segments ?? []) push(seq, 'segment_added', seg);
  for (const { seq, acknowledged_by, ...a } of s.alerts ?? []) {
    push(seq, 'alert_raised', a);
    if (acknowledged_by) push(seq + 0.5, 'alert_acknowledged', { alert_id: a.alert_id, by: acknowledged_by });
  }
  for (const c of Object.values(s.checklist ?? {})) {
    if (c.status === 'completed') push(c.seq, 'checklist_item_completed', { item: c.item, segment_id: c.segment_id });
    else push(c.seq, 'checklist_item_missed', { item: c.item, reason: c.reason });
  }
  for (const { seq, ...card } of s.cards ?? []) push(seq, 'guidance_card_shown', card);
  for (const { seq, feedback, ...sug } of s.suggestions ?? []) {
    push(seq, 'reply_suggested', sug);
    if (feedback) push(seq + 0.5, 'suggestion_feedback', { suggestion_id: sug.suggestion_id, verdict: feedback[0], by: feedback[1] });
  }
  for (const { seq, ...f } of s.generation_failures ?? []) push(seq, 'generation_failed', f);
  if (s.ended) {
    const at = s.summary ? s.summary.seq - 0.5 : s.version + 0.5;
    push(at, 'call_ended', { reason: s.ended.reason, by: s.ended.by }, s.ended.at);
  }
  if (s.summary) {
    const { seq, ...sum } = s.summary;
    push(seq, 'summary_generated', sum);
  }
  if (s.disposition?.overridden_by) {
    push(s.version + 0.75, 'disposition_overridden', { to: s.disposition.disposition, by: s.disposition.overridden_by, note: s.disposition.note });
  }
  return out.sort((a, b) => a.seq - b.seq);
}

function skeleton(callId) {
  const el = (tag, props, ...kids) => h(tag, props, ...kids);
  const v = {};
  v.status = el('span', { class: 'badge live', 'data-testid': 'call-status', text: 'Loading' });
  v.meta = el('div', { class: 'meta-row' });
  const idCode = el('code', { class: 'call-id', 'data-testid': 'call-id', text: callId });
  const copied = el('span', { class: 'copied', role: 'status' });
  const command = `earshot replay FILE --server ${location.origin} --call ${callId}`;
  const commandCode = el('code', { 'data-testid': 'replay-command', text: command });
  const copyButton = (what, text, target) => el('button', {
    type: 'button',
    class: 'quiet small',
    'data-testid': what === 'id' ? 'copy-call-id' : 'copy-command',
    text: what === 'id' ? 'Copy ID' : 'Copy command',
    onclick: async () => {
      const ok = await copyText(text, target);
      copied.textContent = ok ? (what === 'id' ? 'Call ID copied.' : 'Command copied.') : 'Selected: press Ctrl+C to copy.';
    },
  });
  v.hint = el('p', { class: 'hint' }, 'Stream a recorded call into it: ', commandCode, ' ', copyButton('command', command, commandCode));
  v.end = el('button', { type: 'button', class: 'danger', 'data-testid': 'end-session', text: 'End session', hidden: true });
  v.endStatus = el('span', { class: 'ack-status', role: 'status' });

  v.critical = el('div', { class: 'alert-list', 'data-testid': 'alerts-critical' });
  v.warnings = el('div', { class: 'alert-list', 'data-testid': 'alerts-other' });
  v.alertCount = el('span', { class: 'count', text: 'None so far' });
  v.alertsEmpty = el('p', { class: 'muted', text: 'No alerts. Prohibited claims show here the moment they are said.' });
  v.suggestions = el('div', { class: 'suggestion-list', 'data-testid': 'suggestions' });
  v.suggestionsEmpty = el('p', { class: 'muted', text: 'Suggested replies appear after the customer speaks.' });
  v.cards = el('div', { class: 'card-list', 'data-testid': 'cards' });
  v.cardsEmpty = el('p', { class: 'muted', text: 'No guidance cards yet.' });
  v.checklist = el('ul', { class: 'checklist', 'data-testid': 'checklist' });
  v.checklistCount = el('span', { class: 'count' });
  v.checklistNote = el('p', { class: 'muted', hidden: true });
  v.notes = el('ul', { class: 'notes' });
  v.notesBox = el('section', { class: 'box notes-box', 'aria-label': 'Assist notes', hidden: true }, el('h3', { text: 'Assist notes' }), v.notes);
  v.transcript = el('ol', { class: 'transcript', 'data-testid': 'transcript' });
  v.transcriptCount = el('span', { class: 'count' });
  v.feedNote = el('p', { class: 'form-error', role: 'alert', hidden: true });

  v.summaryBody = el('div', {});
  v.disposition = el('p', { class: 'disposition', 'data-testid': 'disposition' });
  v.overrideSelect = el('select', { id: 'disp-select', 'data-testid': 'disposition-select' }, DISPOSITIONS.map((d) => el('option', { value: d, text: label(d) })));
  v.overrideNote = el('input', { id: 'disp-note', type: 'text', maxlength: '2000', autocomplete: 'off', 'data-testid': 'disposition-note', placeholder: 'Why (optional)' });
  v.overrideSave = el('button', { type: 'submit', class: 'primary small', 'data-testid': 'disposition-save', text: 'Save disposition' });
  v.overrideStatus = el('span', { class: 'ack-status', role: 'status', 'data-testid': 'disposition-status' });
  v.overrideForm = el(
    'form',
    { class: 'override', 'data-testid': 'disposition-override', hidden: true },
    el('label', { for: 'disp-select', text: 'Change to' }),
    v.overrideSelect,
    el('label', { for: 'disp-note', class: 'sr-only', text: 'Note' }),
    v.overrideNote,
    v.overrideSave,
    v.overrideStatus,
  );
  v.summaryBox = el(
    'section',
    { class: 'box summary', 'data-testid': 'summary', 'aria-labelledby': 'summary-title', hidden: true },
    el('h2', { id: 'summary-title', text: 'Call summary' }),
    v.summaryBody,
    v.disposition,
    v.overrideForm,
  );

  v.transcriptBox = el(
    'section',
    { class: 'col transcript-col', 'aria-labelledby': 'transcript-title' },
    el('h2', { id: 'transcript-title' }, 'Transcript ', v.transcriptCount),
    v.transcript,
  );
  v.loading = el('p', { class: 'muted', role: 'status', text: 'Loading the call…' });
  v.grid = el(
    'div',
    { class: 'session-grid', hidden: true },
    el(
      'div',
      { class: 'col guide-col' },
      v.summaryBox,
      el(
        'section',
        { class: 'box alerts', 'data-testid': 'alerts', 'aria-labelledby': 'alerts-title' },
        el('h2', { id: 'alerts-title' }, 'Alerts ', v.alertCount),
        v.critical,
        v.warnings,
        v.alertsEmpty,
      ),
      el(
        'section',
        { class: 'box', 'aria-labelledby': 'suggestions-title' },
        el('h2', { id: 'suggestions-title', text: 'Suggested replies' }),
        v.suggestions,
        v.suggestionsEmpty,
      ),
      v.notesBox,
    ),
    v.transcriptBox,
    el(
      'div',
      { class: 'col side-col' },
      el(
        'section',
        { class: 'box', 'aria-labelledby': 'checklist-title' },
        el('h2', { id: 'checklist-title' }, 'Checklist ', v.checklistCount),
        v.checklist,
        v.checklistNote,
      ),
      el(
        'section',
        { class: 'box', 'aria-labelledby': 'cards-title' },
        el('h2', { id: 'cards-title', text: 'Guidance' }),
        v.cards,
        v.cardsEmpty,
      ),
    ),
  );
  v.el = el(
    'section',
    { class: 'session', 'data-testid': 'session', 'data-call-id': callId },
    el(
      'header',
      { class: 'call-head' },
      el('div', { class: 'title-row' }, el('h1', { text: 'Session' }), v.status, v.end, v.endStatus),
      el('div', { class: 'id-row' }, el('span', { class: 'id-label', text: 'Call ID' }), idCode, copyButton('id', callId, idCode), copied),
      v.meta,
      v.hint,
      v.feedNote,
    ),
    v.loading,
    v.grid,
  );
  return v;
}
