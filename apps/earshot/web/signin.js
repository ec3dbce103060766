// Sign in: the person pastes an API token (esk_…); it is checked against the API before it
// is kept, so a mistyped or revoked token is refused here with the server's reason.

import { api, ApiError } from './api.js';
import { h } from './dom.js';

/** Renders the form into `root`; calls `onSignedIn(token)` once the API accepted it. */
export function renderSignIn(root, { message, onSignedIn }) {
  const error = h('p', {
    class: 'form-error',
    id: 'signin-error',
    'data-testid': 'signin-error',
    role: 'alert',
    text: message ?? '',
  });
  error.hidden = !message;
  const input = h('input', {
    id: 'token',
    name: 'token',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: 'esk_…',
    required: true,
    'aria-describedby': 'token-help signin-error',
    'data-testid': 'token-input',
  });
  const button = h('button', { type: 'submit', class: 'primary', 'data-testid': 'signin-submit', text: 'Sign in' });
  const showError = (text) => {
    error.textContent = text;
    error.hidden = false;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  };
  const form = h(
    'form',
    {
      class: 'signin panel',
      'data-testid': 'signin',
      onsubmit: async (ev) => {
        ev.preventDefault();
        const token = input.value.trim();
        if (!token.startsWith('esk_')) {
          showError('That is not an earshot token: tokens start with esk_.');
          return;
        }
        button.disabled = true;
        button.textContent = 'Checking…';
        try {
          await api('GET', '/api/v1/calls?limit=1', undefined, token);
          onSignedIn(token);
        } catch (e) {
          if (e instanceof ApiError && e.status === 401) {
            showError(`The server refused this token: ${e.message}`);
          } else {
            showError(e.message);
          }
        } finally {
          button.disabled = false;
          button.textContent = 'Sign in';
        }
      },
    },
    h('h1', { tabindex: '-1', text: 'Sign in to the guidance panel' }),
    h('label', { for: 'token', text: 'API token' }),
    input,
    h('p', {
      class: 'help',
      id: 'token-help',
      text: 'An admin prints the first token on the server\'s first start; more come from POST /api/v1/tokens or `earshot tokens create`. It is kept in this tab only.',
    }),
    error,
    button,
  );
  root.replaceChildren(form);
  input.focus();
}
