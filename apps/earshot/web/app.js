// The panel's entry point: sign-in gate, the top bar (views, connection, sign-out) and a
// hash router over the views:
//
//   #/                the calls list and "New session"
//   #/calls/<id>      one call, live: transcript, alerts, checklist, suggestions, summary
//   #/supervisor      every live call of the tenant (supervisor and admin tokens)
//
// One WebSocket (live.js) serves every view for as long as the person is signed in.

import { auth, get } from './api.js';
import { Live } from './live.js';
import { renderSignIn } from './signin.js';
import { renderCalls } from './calls.js';
import { renderSession } from './session.js';
import { renderSupervisor } from './supervisor.js';

const main = document.getElementById('main');
const topbar = document.getElementById('topbar');
const conn = document.querySelector('[data-testid="connection"]');
const whoami = document.querySelector('[data-testid="whoami"]');

let live = null;
/** The current view's clean-up. */
let leave = null;
let ticker = null;

function signIn(message) {
  stopLive();
  auth.clear();
  topbar.hidden = true;
  leaveView();
  renderSignIn(main, {
    message,
    onSignedIn(token) {
      auth.set(token);
      start();
    },
  });
}

function start() {
  startLive();
  route();
}

function startLive() {
  topbar.hidden = false;
  live = new Live(auth.token);
  live.addEventListener('state', (ev) => showConnection(ev.detail));
  // A browser is not told why a WebSocket upgrade failed. After a second failed attempt, ask
  // the API: a revoked token answers 401 there, which signs the person out with a reason.
  live.addEventListener('drop', () => {
    if (live?.attempt >= 2) get('/api/v1/calls?limit=1').catch(() => {});
  });
  live.start();
  showConnection(live.status());
}

function stopLive() {
  if (live) live.stop();
  live = null;
}

function showConnection({ state, attempt, retryAt, identity }) {
  conn.dataset.state = state;
  conn.dataset.attempt = String(attempt);
  // The state is a live region; the countdown beside it is not (it would be read every second).
  conn.querySelector('.conn-text').textContent = {
    connected: 'Live',
    connecting: 'Connecting…',
    reconnecting: `Reconnecting (attempt ${attempt})`,
  }[state] ?? 'Offline';
  const wait = conn.querySelector('.conn-wait');
  clearInterval(ticker);
  const countdown = () => {
    const s = retryAt ? Math.ceil((retryAt - Date.now()) / 1000) : 0;
    wait.textContent = state === 'reconnecting' && s > 0 ? ` · in ${s}s` : '';
  };
  countdown();
  if (state === 'reconnecting' && retryAt) ticker = setInterval(countdown, 1000);
  conn.title = {
    connected: 'Connected: events arrive live.',
    connecting: 'Opening the live connection.',
    reconnecting: 'The live connection dropped; reconnecting and resuming where it stopped.',
    offline: 'No network: the panel reconnects when the browser is back online.',
  }[state] ?? '';
  whoami.textContent = identity ? `${identity.tenant} · ${identity.role}` : '';
}

function leaveView() {
  if (leave) {
    try {
      leave();
    } catch (e) {
      console.error(e);
    }
  }
  leave = null;
  delete document.body.dataset.lastSeq;
  delete document.body.dataset.view;
}

function route() {
  if (!auth.token) {
    signIn();
    return;
  }
  if (!live) startLive();
  leaveView();
  const hash = location.hash.replace(/^#/, '') || '/';
  const session = /^\/calls\/([^/?#]+)$/.exec(hash);
  let view = 'calls';
  const ctx = { live, navigate };
  if (session) {
    view = 'session';
    leave = renderSession(main, decodeURIComponent(session[1]), ctx);
  } else if (hash === '/supervisor') {
    view = 'supervisor';
    leave = renderSupervisor(main, ctx);
  } else {
    leave = renderCalls(main, ctx);
  }
  document.body.dataset.view = view;
  for (const a of topbar.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // Move focus to the new view's heading so keyboard and screen-reader users start there.
  const heading = main.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

document.getElementById('signout').addEventListener('click', () => {
  history.replaceState(null, '', location.pathname);
  signIn();
});

window.addEventListener('hashchange', route);
window.addEventListener('earshot:unauthorized', () => {
  signIn('Your token was refused (revoked or expired). Sign in again.');
});

if (auth.token) start();
else signIn();
