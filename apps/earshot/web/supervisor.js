// The supervisor's wallboard (#/supervisor): every live call of the tenant with its alert
// counts, kept current over the WebSocket (`subscribe_tenant`: a snapshot of the live calls,
// then the updated row of a call on each of its events). An ended call leaves the board.
// After a reconnect the feed sends a fresh snapshot, which replaces the board.

import { h, when, since, label, shortId } from './dom.js';

export function renderSupervisor(root, { live }) {
  const body = h('tbody');
  const empty = h('p', { class: 'muted', 'data-testid': 'supervisor-empty', text: 'No live calls right now.' });
  const note = h('p', { class: 'muted', role: 'status', 'data-testid': 'supervisor-status', text: 'Waiting for the live feed…' });
  const totals = h('p', { class: 'totals', 'data-testid': 'supervisor-totals' });
  root.replaceChildren(
    h(
      'section',
      { class: 'supervisor', 'data-testid': 'supervisor' },
      h('div', { class: 'view-head' }, h('h1', { text: 'Live calls' }), totals),
      note,
      h(
        'div',
        { class: 'panel table-wrap' },
        h(
          'table',
          { class: 'calls-table board', 'data-testid': 'supervisor-table' },
          h('caption', { class: 'sr-only', text: 'Live calls of the tenant, updated as they happen' }),
          h(
            'thead',
            {},
            h('tr', {}, ['Agent', 'Started', 'Duration', 'Segments', 'Open alerts', 'Alerts', 'Last event', 'Call'].map((t) =>
              h('th', { scope: 'col', text: t }))),
          ),
          body,
        ),
        empty,
      ),
    ),
  );

  /** call id → { row, lastKind } */
  const calls = new Map();
  let stopped = false;

  function upsert(c, lastKind) {
    const known = calls.get(c.call_id);
    if (c.status !== 'live') {
      if (known) {
        known.el.remove();
        calls.delete(c.call_id);
      }
      render();
      return;
    }
    // Rows arrive from the tenant feed in log order; an older row never replaces a newer one.
    if (known && c.last_seq < known.row.last_seq) return;
    const entry = { row: c, lastKind: lastKind ?? known?.lastKind ?? '', el: null };
    entry.el = rowEl(entry);
    if (known) known.el.replaceWith(entry.el);
    else body.prepend(entry.el);
    calls.set(c.call_id, entry);
    render();
  }

  function render() {
    empty.hidden = calls.size > 0;
    const rows = [...calls.values()].map((e) => e.row);
    const open = rows.reduce((n, r) => n + r.unacknowledged_alerts, 0);
    totals.textContent = `${rows.length} live · ${open} open alert${open === 1 ? '' : 's'}`;
  }

  const follow = live.followTenant({
    onSnapshot(list) {
      body.replaceChildren();
      calls.clear();
      for (const c of [...list].reverse()) upsert(c);
      note.textContent = `Following the tenant live since ${when(new Date().toISOString())}.`;
      render();
    },
    onUpdate(msg) {
      upsert(msg.call, msg.kind);
    },
    onError(e) {
      note.textContent = e.code === 'forbidden'
        ? 'The supervisor view needs a supervisor or admin token.'
        : `The live feed refused: ${e.message}`;
      note.classList.add('form-error');
    },
  });

  // Durations tick without waiting for events.
  const ticker = setInterval(() => {
    if (stopped) return;
    for (const e of calls.values()) {
      const cell = e.el.querySelector('[data-cell="duration"]');
      if (cell) cell.textContent = since(e.row.started_at);
    }
  }, 1000);

  return () => {
    stopped = true;
    clearInterval(ticker);
    follow.close();
  };
}

function rowEl({ row: c, lastKind }) {
  const hot = c.unacknowledged_alerts > 0;
  return h(
    'tr',
    { 'data-testid': 'supervisor-row', 'data-call-id': c.call_id, class: hot ? 'hot' : '' },
    h('td', { text: c.agent }),
    h('td', { text: when(c.started_at) }),
    h('td', { 'data-cell': 'duration', text: since(c.started_at) }),
    h('td', { class: 'num', text: c.segments }),
    h('td', { class: 'num' }, h('span', { class: hot ? 'count hot' : 'count', 'data-testid': 'supervisor-open-alerts', text: c.unacknowledged_alerts })),
    h('td', { class: 'num', 'data-testid': 'supervisor-alerts', text: c.alerts }),
    h('td', { text: lastKind ? label(lastKind) : '' }),
    h('td', {}, h('a', { href: `#/calls/${c.call_id}`, text: `Open ${shortId(c.call_id)}`, 'aria-label': `Open call ${c.call_id} (${c.agent})` })),
  );
}
