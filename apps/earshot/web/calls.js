// The calls list: live calls first, then the latest ended ones (from the call index, which
// trails the log by milliseconds), and "New session", which starts a call and opens it.

import { get, post, ApiError } from './api.js';
import { h, fill, when, label, shortId } from './dom.js';

const AGENT_KEY = 'earshot.agent';
const REFRESH_MS = 5000;

export function renderCalls(root, { navigate }) {
  const agentInput = h('input', {
    id: 'agent-id',
    name: 'agent',
    autocomplete: 'off',
    spellcheck: 'false',
    value: localStorage.getItem(AGENT_KEY) ?? '',
    placeholder: 'e.g. agent-7',
    'data-testid': 'agent-input',
    'aria-describedby': 'agent-help',
  });
  const startError = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'new-session-error' });
  startError.hidden = true;
  const startButton = h('button', { type: 'submit', class: 'primary', 'data-testid': 'new-session', text: 'New session' });
  const form = h(
    'form',
    {
      class: 'new-session',
      onsubmit: async (ev) => {
        ev.preventDefault();
        startError.hidden = true;
        const agent = agentInput.value.trim();
        startButton.disabled = true;
        try {
          const body = { source: 'manual' };
          if (agent) body.agent_id = agent;
          const r = await post('/api/v1/calls', body);
          if (agent) localStorage.setItem(AGENT_KEY, agent);
          navigate(`#/calls/${r.call_id}`);
        } catch (e) {
          startError.textContent = e instanceof ApiError && e.field === 'agent_id'
            ? `Agent id: ${e.message.replace(/^agent_id: /, '')}`
            : e.message;
          startError.hidden = false;
          agentInput.focus();
        } finally {
          startButton.disabled = false;
        }
      },
    },
    h('label', { for: 'agent-id', text: 'Agent' }),
    agentInput,
    startButton,
    h('span', {
      class: 'help',
      id: 'agent-help',
      text: 'Starts a call on the tenant\'s active ruleset and opens it. Agent tokens may leave the agent empty.',
    }),
    startError,
  );

  const liveBody = h('tbody');
  const endedBody = h('tbody');
  const status = h('p', { class: 'muted', role: 'status', 'data-testid': 'calls-status' });
  const refresh = h('button', { type: 'button', class: 'quiet', text: 'Refresh', onclick: () => load() });

  root.replaceChildren(
    h(
      'section',
      { class: 'calls', 'data-testid': 'calls' },
      h('div', { class: 'view-head' }, h('h1', { text: 'Calls' }), refresh),
      h('section', { class: 'panel', 'aria-labelledby': 'new-session-title' },
        h('h2', { id: 'new-session-title', text: 'Start a session' }), form),
      h('section', { class: 'panel', 'aria-labelledby': 'live-title' },
        h('h2', { id: 'live-title', text: 'Live calls' }), table(liveBody, 'live')),
      h('section', { class: 'panel', 'aria-labelledby': 'ended-title' },
        h('h2', { id: 'ended-title', text: 'Recently ended' }), table(endedBody, 'ended')),
      status,
    ),
  );

  let stopped = false;
  let timer = null;
  async function load() {
    clearTimeout(timer);
    try {
      const [liveCalls, ended] = await Promise.all([
        get('/api/v1/calls?status=live&limit=100'),
        get('/api/v1/calls?status=ended&limit=25'),
      ]);
      if (stopped) return;
      fill(liveBody, rows(liveCalls.calls, 'No live calls.'));
      fill(endedBody, rows(ended.calls, 'No ended calls yet.'));
      status.textContent = `Updated ${when(new Date().toISOString())}.`;
    } catch (e) {
      if (stopped) return;
      status.textContent = `Could not load the calls: ${e.message}`;
    }
    if (!stopped) timer = setTimeout(load, REFRESH_MS);
  }
  load();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function table(body, kind) {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'calls-table', 'data-testid': `calls-${kind}` },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Agent', 'Started', 'Status', 'Segments', 'Alerts', 'Disposition', 'Call'].map((t) =>
            h('th', { scope: 'col', text: t })),
        ),
      ),
      body,
    ),
  );
}

function rows(calls, empty) {
  if (!calls.length) {
    return h('tr', {}, h('td', { colspan: '7', class: 'muted', text: empty }));
  }
  return calls.map((c) =>
    h(
      'tr',
      { 'data-testid': 'call-row', 'data-call-id': c.call_id, 'data-status': c.status },
      h('td', { text: c.agent }),
      h('td', { text: when(c.started_at) }),
      h('td', {}, h('span', { class: `badge ${c.status}`, text: label(c.status) })),
      h('td', { class: 'num', text: c.segments }),
      h(
        'td',
        { class: 'num' },
        c.unacknowledged_alerts > 0
          ? h('span', { class: 'count hot', title: `${c.unacknowledged_alerts} not acknowledged`, text: `${c.alerts} (${c.unacknowledged_alerts} open)` })
          : String(c.alerts),
      ),
      h('td', { text: c.disposition ? label(c.disposition) : '—' }),
      h('td', {}, h('a', { href: `#/calls/${c.call_id}`, text: `Open ${shortId(c.call_id)}`, 'aria-label': `Open call ${c.call_id} (${c.agent})` })),
    ));
}
