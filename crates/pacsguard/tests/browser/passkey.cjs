// Passkeys in a real browser: Debian's Chromium driven headless by playwright-core, with
// Chromium's virtual authenticator (CDP WebAuthn domain: CTAP2, internal transport,
// resident keys, user verification) standing in for a security key or a phone.
// First-admin setup from the printed link with a passkey as the second factor (a real
// attestation object from Chromium), sign-out, sign-in with password + passkey, a step-up
// with the passkey that lets a difference be accepted, the passkeys page; then the same
// authenticator no longer verifying its user is refused. Every page is photographed into
// SHOTS (passkey-*.png); a failure also leaves passkey-failure.png there. Between them,
// a second account with a passkey alone finishes a password reset with it.
//
// Run by crates/pacsguard/tests/serve.rs with BASE (https://localhost:PORT), SETUP_LINK,
// SHOTS and NODE_PATH set.
'use strict';
const path = require('path');
const { chromium } = require('playwright-core');

const BASE = process.env.BASE;
const SETUP_LINK = process.env.SETUP_LINK;
const SHOTS = process.env.SHOTS;
const PASSWORD = 'amber lantern over quiet harbour';

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const shot = (name) =>
    page.screenshot({ path: path.join(SHOTS, `passkey-${name}.png`), fullPage: true });
  try {
    const cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
      },
    });

    // Setup, then a passkey as the second factor.
    await page.goto(SETUP_LINK);
    await page.fill('#name', 'admin');
    await page.fill('#password', PASSWORD);
    await Promise.all([page.waitForURL(/\/enrol$/), page.click('#create')]);
    await Promise.all([page.waitForURL(/\/enrol\/passkey$/), page.click('#passkey-enrol-link')]);
    await page.waitForSelector('#passkey-register:not([disabled])');
    await shot('01-enrol');
    await page.fill('#label', 'Chromium virtual authenticator');
    await page.click('#passkey-register');
    await page.waitForSelector('#recovery-codes');
    await shot('02-recovery-codes');
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    if (credentials.length !== 1) throw new Error(`credentials: ${JSON.stringify(credentials)}`);
    await Promise.all([page.waitForURL(`${BASE}/`), page.click('#continue')]);
    await page.click('#nav-passkeys');
    await page.waitForSelector('#passkeys');
    const listed = await page.textContent('#passkeys');
    if (!listed.includes('Chromium virtual authenticator')) throw new Error(`not listed: ${listed}`);
    await shot('03-passkeys');

    // Sign out, and in again with the password and the passkey.
    await Promise.all([page.waitForURL(/\/login$/), page.click('#logout')]);
    await Promise.all([page.waitForURL(/\/login\/passkey$/), page.click('#passkey-sign-in-link')]);
    await page.waitForSelector('#passkey-sign-in:not([disabled])');
    await page.fill('#name', 'admin');
    await page.fill('#password', PASSWORD);
    await shot('04-sign-in');
    await Promise.all([page.waitForURL(`${BASE}/`), page.click('#passkey-sign-in')]);
    await page.waitForSelector('#roots');
    await shot('05-overview');

    // A step-up with the passkey, then an acceptance it allows.
    await page.click('#nav-differences');
    await page.waitForSelector('#step-up-needed');
    await page.click('#step-up-link');
    await page.waitForSelector('#step-up-form');
    await Promise.all([page.waitForURL(/\/step-up\/passkey/), page.click('#passkey-step-up-link')]);
    await page.waitForSelector('#passkey-confirm:not([disabled])');
    await shot('06-step-up');
    await Promise.all([page.waitForURL(/\/differences$/), page.click('#passkey-confirm')]);
    // waitForSelector survives a navigation still under way (page.$ alone failed in CI
    // with "Execution context was destroyed").
    await page.waitForSelector('#reason-0, #step-up-needed');
    if (await page.$('#step-up-needed')) throw new Error('the passkey step-up did not count');
    await page.fill('#reason-0', 'vendor patch 8, ticket CHG-5678');
    await page.click('#accept-button-0');
    await page.waitForSelector('#accepted');
    await shot('07-accepted');

    // A password reset finished with a passkey (review r26-console): pat, a viewer with
    // a passkey alone in a second browser with its own authenticator, forgot the
    // password; the administrator (its step-up still in its window) resets it, and pat
    // chooses a new one at the link with the passkey, no code and no recovery code.
    await page.goto(`${BASE}/accounts`);
    await page.fill('#name', 'pat');
    await page.selectOption('#role', 'viewer');
    await page.fill('#password', 'violet harbour evening tide');
    await page.fill('#account-reason', 'reads the overview');
    await Promise.all([page.waitForURL(/\/accounts$/), page.click('#create-account')]);
    const other = await browser.newContext({ ignoreHTTPSErrors: true });
    const pat = await other.newPage();
    const patCdp = await other.newCDPSession(pat);
    await patCdp.send('WebAuthn.enable');
    await patCdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
      },
    });
    await pat.goto(`${BASE}/login`);
    await pat.fill('#name', 'pat');
    await pat.fill('#password', 'violet harbour evening tide');
    await Promise.all([pat.waitForURL(/\/enrol$/), pat.click('#sign-in')]);
    await Promise.all([pat.waitForURL(/\/enrol\/passkey$/), pat.click('#passkey-enrol-link')]);
    await pat.waitForSelector('#passkey-register:not([disabled])');
    await pat.fill('#label', "pat's phone");
    await pat.click('#passkey-register');
    await pat.waitForSelector('#recovery-codes');
    await Promise.all([pat.waitForURL(`${BASE}/`), pat.click('#continue')]);
    await page.goto(`${BASE}/accounts`);
    await page.fill('#reset-name', 'pat');
    await page.fill('#reset-reason', 'forgot it, ticket 99');
    await page.click('#reset');
    await page.waitForSelector('#reset-link');
    const resetLink = (await page.textContent('#reset-link'))
      .trim()
      .replace('https://127.0.0.1:', 'https://localhost:');
    await page.goto(`${BASE}/accounts`);
    await page.waitForSelector('#pending-reset-pat');
    await shot('08-reset-pending');
    await pat.goto(resetLink);
    await pat.waitForSelector('#reset-passkey-submit:not([disabled])');
    await pat.screenshot({ path: path.join(SHOTS, 'passkey-09-reset-form.png'), fullPage: true });
    await pat.fill('#reset-passkey-password', 'quiet lanterns over the bay');
    await Promise.all([pat.waitForURL(`${BASE}/`), pat.click('#reset-passkey-submit')]);
    await pat.waitForSelector('#roots');
    await pat.screenshot({ path: path.join(SHOTS, 'passkey-10-reset-done.png'), fullPage: true });
    await other.close();

    // The authenticator no longer verifies its user: no sign-in.
    await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: false });
    await Promise.all([page.waitForURL(/\/login$/), page.click('#logout')]);
    await page.goto(`${BASE}/login/passkey`);
    await page.waitForSelector('#passkey-sign-in:not([disabled])');
    await page.fill('#name', 'admin');
    await page.fill('#password', PASSWORD);
    await page.click('#passkey-sign-in');
    // Either the browser refuses to answer without user verification, or the server
    // refuses the answer: both leave the person signed out.
    await page.waitForFunction(
      () =>
        document.querySelector('#error') ||
        /did not answer/.test((document.querySelector('.passkey-status') || {}).textContent || ''),
      null,
      { timeout: 30000 },
    );
    await shot('11-unverified-refused');
    const status = await page.textContent('body');
    const overview = await page.$('#roots');
    if (overview) throw new Error('signed in without user verification');
    console.log(`browser: unverified: ${status.includes('Sign-in failed') ? 'server refused' : 'browser refused'}`);

    // A page script changed to ask for no user verification (what an attacker who
    // controls the client would do): the authenticator answers without UV, and the
    // server refuses the answer.
    await page.goto(`${BASE}/login/passkey`);
    await page.waitForSelector('#passkey-sign-in:not([disabled])');
    await page.fill('#name', 'admin');
    await page.fill('#password', PASSWORD);
    await page.evaluate(async () => {
      const encode = (buffer) =>
        btoa(String.fromCharCode(...new Uint8Array(buffer)))
          .replace(/\+/g, '-')
          .replace(/\//g, '_')
          .replace(/=+$/, '');
      const decode = (text) => {
        const base64 = text.replace(/-/g, '+').replace(/_/g, '/');
        return Uint8Array.from(atob(base64 + '==='.slice((base64.length + 3) % 4)), (c) => c.charCodeAt(0));
      };
      const form = document.querySelector('#passkey-login-form');
      const credential = await navigator.credentials.get({
        publicKey: {
          rpId: form.dataset.rpId,
          challenge: decode(form.dataset.challenge),
          userVerification: 'discouraged',
        },
      });
      const put = (name, value) => {
        form.querySelector(`input[name="${name}"]`).value = value;
      };
      put('credential_id', encode(credential.rawId));
      put('client_data', encode(credential.response.clientDataJSON));
      put('authenticator_data', encode(credential.response.authenticatorData));
      put('signature', encode(credential.response.signature));
      put('user_handle', credential.response.userHandle ? encode(credential.response.userHandle) : '');
    });
    await Promise.all([
      page.waitForNavigation(),
      page.$eval('#passkey-login-form', (form) => form.submit()),
    ]);
    await page.waitForSelector('#error');
    await shot('12-server-refuses-no-uv');
    const refusal = await page.textContent('#error');
    if (!refusal.includes('Sign-in failed')) throw new Error(`not refused: ${refusal}`);
    if (await page.$('#roots')) throw new Error('signed in without user verification');
    console.log('browser: ok');
  } catch (error) {
    await shot('failure').catch(() => {});
    throw error;
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(`browser: ${error.stack || error}`);
  process.exit(1);
});
