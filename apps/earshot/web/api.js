// The REST API (/api/v1) with the signed-in token, and where that token is kept.
//
// The token lives in sessionStorage: it survives a reload of the tab and is gone when the
// tab closes; it is never put in the page's URL.

const TOKEN_KEY = 'earshot.token';

export const auth = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

/** An answer other than 2xx, or no answer. `status` 0: the server could not be reached. */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

/**
 * Calls the API: `body` is sent as JSON when given; answers the JSON body (null when empty).
 * A 401 also fires `earshot:unauthorized` on window, so the app can ask for a token again.
 */
export async function api(method, path, body, token = auth.token) {
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network', 'The server could not be reached. Check the connection and try again.');
  }
  const text = await response.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!response.ok) {
    const e = json?.error;
    const err = new ApiError(
      response.status,
      e?.code ?? `http_${response.status}`,
      e?.message ?? `The server answered ${response.status}.`,
      e?.field,
    );
    if (response.status === 401 && token === auth.token) {
      window.dispatchEvent(new CustomEvent('earshot:unauthorized', { detail: err }));
    }
    throw err;
  }
  return json;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body);
export const put = (path, body) => api('PUT', path, body);

/** `/api/v1/calls/<id>…` with the id escaped. */
export function callPath(callId, rest = '') {
  return `/api/v1/calls/${encodeURIComponent(callId)}${rest}`;
}
