// The live feed: one WebSocket per page (docs/protocol.md), shared by the views.
//
// Invariant: each followed call has `lastSeq`, the seq of the last event handed to the view,
// and a view only ever gets the event `lastSeq + 1`. Anything at or below it is a duplicate
// (a replay overlapping the live feed after a reconnect) and is dropped; anything above it
// means something was missed, and the call is resubscribed from `lastSeq` instead. So a view
// shows every event exactly once, in order, across any number of drops.
//
// On a drop (a close code 1001, 4000, 4008, 4009, … or the network) the socket is reopened
// with exponential backoff and jitter (0.5 s doubling to 20 s), and every call is
// resubscribed with `since_seq` = its `lastSeq`. While the browser says it has no network,
// no attempt is made; the `online` event retries at once.
//
// Limit: the server's heartbeat pings are answered by the browser itself and never reach
// this code, so a connection that dies silently (no FIN, no RST) on an idle call is noticed
// only when the browser's TCP stack gives up on it; the server notices within ~35 s.

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 20_000;
const CONNECT_TIMEOUT_MS = 10_000;

export class Live extends EventTarget {
  constructor(token) {
    super();
    this.token = token;
    this.ws = null;
    this.state = 'connecting';
    this.attempt = 0;
    this.retryAt = null;
    this.hello = null;
    /** The tenant and role of the token, from the last `hello`. */
    this.identity = null;
    this.stopped = false;
    this.timer = null;
    this.refs = 0;
    /** call id → { lastSeq, handlers, ref, paused, refilling } */
    this.calls = new Map();
    /** { handlers, ref } while the tenant's calls are followed. */
    this.tenant = null;
    this.onOnline = () => {
      if (!this.ws && !this.stopped) {
        clearTimeout(this.timer);
        this.attempt += 1;
        this.setState('reconnecting');
        this.connect();
      }
    };
    this.onOffline = () => {
      if (!this.ws && !this.stopped) {
        clearTimeout(this.timer);
        this.setState('offline');
      }
    };
  }

  start() {
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
    this.connect();
  }

  /** Closes for good (sign-out). */
  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, 'signed out');
    this.calls.clear();
    this.tenant = null;
    this.setState('offline');
  }

  setState(state) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: this.status() }));
  }

  /** What the connection indicator shows. */
  status() {
    return { state: this.state, attempt: this.attempt, retryAt: this.retryAt, identity: this.identity };
  }

  connect() {
    if (this.stopped) return;
    this.retryAt = null;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const url = `${scheme}//${location.host}/api/v1/ws?access_token=${encodeURIComponent(this.token)}`;
    let ws;
    try {
      ws = new WebSocket(url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    // A connection that neither opens nor fails (a black-holed network) is given up on.
    const guard = setTimeout(() => {
      if (this.ws === ws && !this.hello) ws.close();
    }, CONNECT_TIMEOUT_MS);
    ws.addEventListener('message', (m) => {
      if (this.ws !== ws) return;
      let msg;
      try {
        msg = JSON.parse(m.data);
      } catch {
        return;
      }
      this.receive(msg);
    });
    ws.addEventListener('close', (ev) => {
      clearTimeout(guard);
      if (this.ws !== ws) return;
      this.ws = null;
      this.hello = null;
      this.lastClose = { code: ev.code, reason: ev.reason };
      this.dispatchEvent(new CustomEvent('drop', { detail: this.lastClose }));
      this.scheduleReconnect();
    });
  }

  scheduleReconnect() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    if (navigator.onLine === false) {
      this.setState('offline');
      return;
    }
    this.attempt += 1;
    const base = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (this.attempt - 1));
    const delay = base / 2 + Math.random() * (base / 2);
    this.retryAt = Date.now() + delay;
    this.setState('reconnecting');
    this.timer = setTimeout(() => this.connect(), delay);
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.hello) {
      this.ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  nextRef(prefix) {
    this.refs += 1;
    return `${prefix}${this.refs}`;
  }

  receive(msg) {
    switch (msg.type) {
      case 'hello':
        this.hello = msg;
        this.identity = { tenant: msg.tenant, role: msg.role };
        this.attempt = 0;
        this.setState('connected');
        for (const [callId, sub] of this.calls) {
          sub.refilling = null;
          this.subscribe(callId, sub);
        }
        if (this.tenant) this.subscribeTenant();
        break;
      case 'event':
        this.onEvent(msg);
        break;
      case 'suggestion_draft': {
        const sub = this.calls.get(msg.call_id);
        sub?.handlers.onDraft?.(msg);
        break;
      }
      case 'subscribed': {
        const sub = this.calls.get(msg.call_id);
        if (!sub || msg.ref !== sub.ref) break;
        sub.refilling = null;
        sub.handlers.onSubscribed?.(msg);
        break;
      }
      case 'resync_required': {
        const sub = this.calls.get(msg.call_id);
        if (!sub || msg.ref !== sub.ref) break;
        // Too far behind to replay: the view reloads the state and resumes from its seq.
        sub.paused = true;
        sub.handlers.onResync?.(msg);
        break;
      }
      case 'calls':
        this.tenant?.handlers.onSnapshot?.(msg.calls);
        break;
      case 'call_updated':
        this.tenant?.handlers.onUpdate?.(msg);
        break;
      case 'error':
        this.onError(msg);
        break;
      default:
        break;
    }
  }

  onEvent(msg) {
    const sub = this.calls.get(msg.call_id);
    if (!sub || sub.paused) return;
    if (msg.seq <= sub.lastSeq) return; // already shown: replay and live feed overlapped
    if (msg.seq !== sub.lastSeq + 1) {
      // A gap: never skip an event. Ask again from what we have (once: until that
      // subscription is confirmed, later gaps are the same one, and its replay fills them).
      if (!sub.refilling) {
        this.subscribe(msg.call_id, sub);
        sub.refilling = sub.ref;
      }
      return;
    }
    sub.lastSeq = msg.seq;
    sub.handlers.onEvent?.(msg);
  }

  onError(msg) {
    for (const [, sub] of this.calls) {
      if (msg.ref && msg.ref === sub.ref) {
        sub.handlers.onError?.(msg.error);
        return;
      }
    }
    if (this.tenant && msg.ref === this.tenant.ref) this.tenant.handlers.onError?.(msg.error);
  }

  subscribe(callId, sub) {
    sub.ref = this.nextRef('c');
    sub.paused = false;
    this.send({ type: 'subscribe', call_id: callId, since_seq: sub.lastSeq, ref: sub.ref });
  }

  /**
   * Follows a call from `sinceSeq` (the seq the view already shows). `handlers`: onEvent(msg)
   * for each new event in order, onDraft(msg), onSubscribed(msg), onResync(msg), onError(e).
   * Answers a handle with `lastSeq`, `resume(seq)` (after a resync) and `close()`.
   */
  followCall(callId, sinceSeq, handlers) {
    const sub = { lastSeq: sinceSeq, handlers, ref: null, paused: false, refilling: null };
    this.calls.set(callId, sub);
    this.subscribe(callId, sub);
    return {
      get lastSeq() {
        return sub.lastSeq;
      },
      resume: (seq) => {
        sub.lastSeq = seq;
        this.subscribe(callId, sub);
      },
      close: () => {
        if (this.calls.get(callId) !== sub) return;
        this.calls.delete(callId);
        this.send({ type: 'unsubscribe', call_id: callId });
      },
    };
  }

  subscribeTenant() {
    this.tenant.ref = this.nextRef('t');
    this.send({ type: 'subscribe_tenant', ref: this.tenant.ref });
  }

  /**
   * Follows every call of the tenant (supervisors, admins). `handlers`: onSnapshot(calls) on
   * each (re)subscription, onUpdate(msg) per `call_updated`, onError(e).
   */
  followTenant(handlers) {
    const tenant = { handlers, ref: null };
    this.tenant = tenant;
    this.subscribeTenant();
    return {
      // The protocol has no way to stop following the tenant: its rows are ignored from now
      // on, and the next connection does not ask for them.
      close: () => {
        if (this.tenant === tenant) this.tenant = null;
      },
    };
  }
}
