// The console in a real browser: Debian's Chromium driven headless by playwright-core.
// First-admin setup from the printed link, TOTP enrolment (the code computed here from the
// secret the page shows, RFC 6238), sign-out, sign-in with a recovery code, the overview,
// then a difference accepted with a step-up and a reason. Every page is photographed into
// SHOTS; a failure also leaves failure.png there.
//
// Run by crates/pacsguard/tests/serve.rs with BASE, SETUP_LINK, SHOTS and NODE_PATH set.
'use strict';
const crypto = require('crypto');
const path = require('path');
const { chromium } = require('playwright-core');

const BASE = process.env.BASE;
const SETUP_LINK = process.env.SETUP_LINK;
const SHOTS = process.env.SHOTS;
const PASSWORD = 'amber lantern over quiet harbour';

function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of text.trim()) {
    const index = alphabet.indexOf(c);
    if (index < 0) throw new Error(`not base32: ${text}`);
    value = ((value << 5) | index) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

// RFC 6238 with SHA-1, 6 digits, 30-second steps.
function totp(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = crypto.createHmac('sha1', secret).update(counter).digest();
  const offset = mac[19] & 0x0f;
  const number =
    (((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3]) %
    1000000;
  return String(number).padStart(6, '0');
}

const stepNow = () => Math.floor(Date.now() / 1000 / 30);

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const shot = (name) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  try {
    await page.goto(SETUP_LINK);
    await shot('01-setup');
    await page.fill('#name', 'admin');
    await page.fill('#password', PASSWORD);
    await Promise.all([page.waitForURL(/\/enrol$/), page.click('#create')]);
    await shot('02-enrol');
    const secret = base32(await page.textContent('#totp-secret'));
    const enrolStep = stepNow();
    await page.fill('#code', totp(secret, enrolStep));
    await page.click('#confirm');
    await page.waitForSelector('#recovery-codes');
    await shot('03-recovery-codes');
    const recovery = (await page.textContent('#recovery-codes li')).trim();
    await Promise.all([page.waitForURL(`${BASE}/`), page.click('#continue')]);
    await page.waitForSelector('#roots');
    await shot('04-overview');

    // Sign out, and in again with a recovery code (the TOTP step is spent).
    await Promise.all([page.waitForURL(/\/login$/), page.click('#logout')]);
    await shot('05-login');
    await page.fill('#name', 'admin');
    await page.fill('#password', PASSWORD);
    await page.fill('#code', recovery);
    await Promise.all([page.waitForURL(`${BASE}/`), page.click('#sign-in')]);
    await page.waitForSelector('#roots');

    // The alerts and the trail.
    await page.click('#nav-alerts');
    await page.waitForSelector('#findings');
    await shot('06-alerts');
    await page.click('#nav-trail');
    await page.waitForSelector('#records');
    await shot('07-trail');

    // A difference, accepted with a step-up and a reason.
    await page.click('#nav-differences');
    await page.waitForSelector('#step-up-needed');
    const differences = await page.textContent('#differences-0');
    if (!differences.includes('readme.txt')) throw new Error(`no difference shown: ${differences}`);
    await shot('08-differences');
    await page.click('#step-up-link');
    await page.waitForSelector('#step-up-form');
    await shot('09-step-up');
    await page.fill('#code', totp(secret, Math.max(stepNow(), enrolStep + 1)));
    await Promise.all([page.waitForURL(/\/differences$/), page.click('#confirm')]);
    if (await page.$('#step-up-needed')) throw new Error('the step-up did not count');
    await page.fill('#reason-0', 'vendor patch 7, ticket CHG-1234');
    await page.click('#accept-button-0');
    await page.waitForSelector('#accepted');
    await shot('10-accepted');
    const accepted = await page.textContent('#accepted');
    if (!accepted.includes('1 difference(s)')) throw new Error(`unexpected: ${accepted}`);

    await page.click('#nav-accounts');
    await page.waitForSelector('#sessions');
    await shot('11-accounts');
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
