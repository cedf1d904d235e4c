// A request line past the console's limit on a kept-alive connection, as a browser sends
// it: Debian's Chromium (headless, driven by playwright-core) opens the sign-in page, then
// an address whose query takes the request line past MAX_REQUEST_HEAD_BYTES on the same
// connection (CDP's Network domain says which connection answered). The console answers
// 414 "Address too long" with the headers of every answer, the browser shows the page
// (photographed into SHOTS, long-address-*.png) and the console serves the next page.
//
// Run by crates/pacsguard/tests/serve.rs with BASE, SHOTS, TARGET_BYTES and NODE_PATH set.
'use strict';
const path = require('path');
const { chromium } = require('playwright-core');

const BASE = process.env.BASE;
const SHOTS = process.env.SHOTS;
const TARGET_BYTES = Number(process.env.TARGET_BYTES);

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox'],
  });
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const shot = (name) =>
    page.screenshot({ path: path.join(SHOTS, `long-address-${name}.png`), fullPage: true });
  try {
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    const documents = [];
    cdp.on('Network.responseReceived', (event) => {
      if (event.type === 'Document') documents.push(event.response);
    });

    const first = await page.goto(`${BASE}/login`);
    if (first.status() !== 200) throw new Error(`sign-in page: ${first.status()}`);
    await shot('01-login');
    const long = `${BASE}/login?q=${'a'.repeat(TARGET_BYTES)}`;
    const refused = await page.goto(long);
    if (refused.status() !== 414) throw new Error(`the long address: ${refused.status()}`);
    const headers = refused.headers();
    for (const name of [
      'content-security-policy',
      'strict-transport-security',
      'x-content-type-options',
      'x-frame-options',
    ]) {
      if (!headers[name]) throw new Error(`the 414 lacks ${name}: ${JSON.stringify(headers)}`);
    }
    const title = await page.textContent('h2');
    if (title !== 'Address too long') throw new Error(`the page shown: ${title}`);
    await shot('02-address-too-long');
    // The 414 came on the connection of the first page: the browser kept it alive.
    if (documents.length !== 2) throw new Error(`documents: ${JSON.stringify(documents.map((d) => d.status))}`);
    const [opened, answered] = documents;
    if (answered.status !== 414 || !answered.connectionReused || answered.connectionId !== opened.connectionId) {
      throw new Error(
        `the 414 came on another connection: ${JSON.stringify([opened, answered].map((d) => [d.status, d.connectionId, d.connectionReused]))}`,
      );
    }
    const again = await page.goto(`${BASE}/login`);
    if (again.status() !== 200) throw new Error(`after the 414: ${again.status()}`);
    console.log(`414 on connection ${answered.connectionId}, reused: ${answered.connectionReused}`);
  } catch (e) {
    await page.screenshot({ path: path.join(SHOTS, 'long-address-failure.png'), fullPage: true }).catch(() => {});
    throw e;
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
