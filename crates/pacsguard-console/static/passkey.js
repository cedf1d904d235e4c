// PacsGuard console: the passkey ceremonies (WebAuthn). The console's only script, served
// from its own origin (CSP script-src 'self', nothing inline). A form marked
// data-passkey="create" or "get" carries the server's options in data-* attributes; on
// submit this asks the browser for the passkey, puts the answer (base64url) into the
// form's hidden fields and posts the form, CSRF token and all. The server checks
// everything; nothing here is trusted.
'use strict';
(function () {
  const encode = (buffer) => {
    const bytes = new Uint8Array(buffer);
    let text = '';
    for (const b of bytes) text += String.fromCharCode(b);
    return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  };
  const decode = (text) => {
    const base64 = text.replace(/-/g, '+').replace(/_/g, '/');
    const binary = atob(base64 + '==='.slice((base64.length + 3) % 4));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  };
  const credentials = (list) =>
    (list || '')
      .split(',')
      .filter((id) => id.length > 0)
      .map((id) => ({ type: 'public-key', id: decode(id) }));
  const say = (form, text) => {
    const status = form.querySelector('.passkey-status');
    if (status) status.textContent = text;
  };
  const put = (form, name, value) => {
    const input = form.querySelector(`input[name="${name}"]`);
    if (input) input.value = value;
  };

  async function create(form) {
    const d = form.dataset;
    const credential = await navigator.credentials.create({
      publicKey: {
        rp: { id: d.rpId, name: 'PacsGuard' },
        user: { id: decode(d.userId), name: d.userName, displayName: d.userName },
        challenge: decode(d.challenge),
        pubKeyCredParams: [{ type: 'public-key', alg: -7 }],
        timeout: Number(d.timeout),
        excludeCredentials: credentials(d.exclude),
        authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
        attestation: 'none',
      },
    });
    put(form, 'client_data', encode(credential.response.clientDataJSON));
    put(form, 'attestation_object', encode(credential.response.attestationObject));
  }

  async function get(form) {
    const d = form.dataset;
    const credential = await navigator.credentials.get({
      publicKey: {
        rpId: d.rpId,
        challenge: decode(d.challenge),
        timeout: Number(d.timeout),
        allowCredentials: credentials(d.allow),
        userVerification: 'required',
      },
    });
    const response = credential.response;
    put(form, 'credential_id', encode(credential.rawId));
    put(form, 'client_data', encode(response.clientDataJSON));
    put(form, 'authenticator_data', encode(response.authenticatorData));
    put(form, 'signature', encode(response.signature));
    put(form, 'user_handle', response.userHandle ? encode(response.userHandle) : '');
  }

  for (const form of document.querySelectorAll('form[data-passkey]')) {
    const button = form.querySelector('.passkey-button');
    if (!button) continue;
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say(form, 'This browser cannot use passkeys.');
      continue;
    }
    if (window.location.origin !== form.dataset.origin) {
      say(form, `Passkeys work only at ${form.dataset.origin}: open the console there.`);
      continue;
    }
    say(form, '');
    button.disabled = false;
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      button.disabled = true;
      say(form, 'Waiting for your passkey…');
      try {
        if (form.dataset.passkey === 'create') await create(form);
        else await get(form);
        say(form, 'Checking…');
        form.submit();
      } catch (error) {
        say(form, `The passkey did not answer (${(error && error.name) || error}). Try again.`);
        button.disabled = false;
      }
    });
  }
})();
