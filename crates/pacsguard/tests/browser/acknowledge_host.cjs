// The Hosts page's acknowledgement of a host's standing refusal in a real browser
// (Debian's Chromium, headless, driven by playwright-core; issue 14, session 32). The
// administrator's session (signed in and stepped up by the test) is handed in as its
// cookie. The page shows the refusal's digest; a form drawn before the host was refused
// anew (its digest set to the old refusal's, STALE) is answered 409 and nothing is
// acknowledged; the page drawn anew acknowledges the refusal standing now. Each step is
// photographed into SHOTS (hosts-*.png).
//
// Run by crates/pacsguard/tests/fleet.rs with BASE, SHOTS, COOKIE, HOST, STANDING,
// STALE, REASON and NODE_PATH set.
'use strict';
const path = require('path');
const { chromium } = require('playwright-core');

const { BASE, SHOTS, COOKIE, HOST, STANDING, STALE, REASON } = process.env;

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  await context.addCookies([
    { name: '__Host-pacsguard', value: COOKIE, url: `${BASE}/`, secure: true, httpOnly: true, sameSite: 'Strict' },
  ]);
  const page = await context.newPage();
  const shot = (name) => page.screenshot({ path: path.join(SHOTS, `hosts-${name}.png`), fullPage: true });
  try {
    const opened = await page.goto(`${BASE}/hosts`);
    if (opened.status() !== 200) throw new Error(`the Hosts page: ${opened.status()}`);
    const shown = await page.textContent('code.refusal-digest');
    if (shown !== STANDING) throw new Error(`the refusal shown: ${shown}, not ${STANDING}`);
    await shot('01-standing-refusal');
    const form = page.locator(`form.acknowledge:has(input[name="host"][value="${HOST}"])`);

    // The form as drawn before the host was refused anew: the old refusal's digest.
    await form.locator('input[name="digest"]').evaluate((input, stale) => { input.value = stale; }, STALE);
    await form.locator('input[name="reason"]').fill(REASON);
    const [stale] = await Promise.all([page.waitForNavigation(), form.locator('button').click()]);
    if (stale.status() !== 409) throw new Error(`a stale digest: ${stale.status()}`);
    const said = await page.textContent('#hosts-message');
    if (!said.includes('changed since it was shown')) throw new Error(`said: ${said}`);
    await shot('02-refusal-changed');

    // The page drawn anew names the refusal standing now.
    await form.locator('input[name="reason"]').fill(REASON);
    const [done] = await Promise.all([page.waitForNavigation(), form.locator('button').click()]);
    if (done.status() !== 200) throw new Error(`the acknowledgement: ${done.status()}`);
    const after = await page.textContent('#hosts-message');
    if (!after.includes('Acknowledged the standing refusal')) throw new Error(`said: ${after}`);
    const row = await page.textContent('#hosts');
    if (!row.includes('acknowledged by console:admin')) throw new Error(`the row: ${row}`);
    if ((await page.locator('form.acknowledge').count()) !== 0) throw new Error('the form is still offered');
    await shot('03-acknowledged');
  } catch (e) {
    await page.screenshot({ path: path.join(SHOTS, 'hosts-failure.png'), fullPage: true }).catch(() => {});
    throw e;
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
