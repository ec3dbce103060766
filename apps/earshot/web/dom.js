// Small DOM helpers. The Content-Security-Policy forbids inline styles and scripts, so
// elements are built here with properties and classes only: never `style`, never HTML strings.

/**
 * Builds an element. `props`: `class`, `text`, `on<event>` (listeners), `dataset` (an object),
 * anything else as an attribute (`true` sets it empty, `false`/null/undefined leaves it out).
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Speaks `text` to screen readers (the page's one assertive live region). */
export function announce(text) {
  const region = document.getElementById('announcer');
  if (!region) return;
  // Clearing first makes a repeated message be read again.
  region.textContent = '';
  setTimeout(() => { region.textContent = text; }, 50);
}

/** `0:14` for 14,660 ms into the call. */
export function callClock(ms) {
  const s = Math.floor((ms ?? 0) / 1000);
  const m = Math.floor(s / 60);
  const r = String(s % 60).padStart(2, '0');
  return m >= 60 ? `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}:${r}` : `${m}:${r}`;
}

/** A time of day, with the date when it is not today. */
export function when(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const today = new Date();
  if (d.toDateString() === today.toDateString()) return time;
  return `${d.toLocaleDateString([], { month: 'short', day: 'numeric' })} ${time}`;
}

/** `3m 05s` since `iso`. */
export function since(iso, now = Date.now()) {
  const s = Math.max(0, Math.floor((now - new Date(iso).getTime()) / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

/** `booked` → `Booked`. */
export function label(word) {
  const s = String(word ?? '').replaceAll('_', ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/**
 * Copies `text` to the clipboard; where the Clipboard API is unavailable (an insecure
 * origin), selects the text in `fallbackEl` so the person can press Ctrl+C. Answers whether
 * it copied.
 */
export async function copyText(text, fallbackEl) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (fallbackEl) {
      const range = document.createRange();
      range.selectNodeContents(fallbackEl);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
    }
    return false;
  }
}

/** A short id for tables: the first 8 characters of a UUID. */
export function shortId(id) {
  return String(id).slice(0, 8);
}
