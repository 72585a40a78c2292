// What every browser test file shares: the running sandbox's info (`run.sh` exports SANDBOX_JSON), the demo
// people, one chromium, the login through the simulated Salesforce login page, screenshots and the XSS
// tripwires (a dialog handler and a canary global).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const info = JSON.parse(fs.readFileSync(process.env.SANDBOX_JSON, 'utf8'));
export const D = info.daemon_url;
const users = Object.fromEntries(info.ui_users.map((u) => [u.role === 'admin' ? 'admin' : u.bank, u]));
export const bankA = info.banks[0];
export const bankB = info.banks[1];
export const repA = users[bankA.account_id];
export const repB = users[bankB.account_id];
export const admin = users.admin;
export const WAIT = 15_000;

// A handful from OWASP's XSS filter evasion cheat sheet, each at most 64 characters (the reference's limit).
// Any of them executing would call alert() (caught by the dialog handler) or set the canary global.
export const XSS = [
  '<script>window.__xss=1;alert(1)</script>',
  '<img src=x onerror="window.__xss=1;alert(1)">',
  '"><svg onload=alert(1)>',
  "'';!--\"<XSS>=&{()}",
  '<IMG SRC="javascript:alert(\'XSS\');">',
  '<a href="jav&#x09;ascript:alert(1)">x</a>',
  '<iframe src=javascript:alert(1)></iframe>',
  '</td><script>alert(document.cookie)</script>',
];

let browser;

/** Starts the one chromium of this test file. */
export async function launch() {
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM, args: ['--no-sandbox'] });
  return browser;
}

export async function closeBrowser() {
  await browser?.close();
}

/** A bank user's bearer token (the bank API's own login, from sandbox.json). */
export async function token(bank) {
  const r = await fetch(bank.token_request.url, {
    method: 'POST',
    body: new URLSearchParams(bank.token_request.form),
  });
  assert.equal(r.status, 200);
  return (await r.json()).access_token;
}

/** A fresh context and page with the XSS tripwires armed (dialogs recorded and dismissed). */
export async function freshPage(options = {}) {
  const context = await browser.newContext({ acceptDownloads: true, ...options });
  const page = await context.newPage();
  armed(page);
  return { context, page };
}

/** Records and dismisses every dialog of `page`; bounded waits. */
export function armed(page) {
  page.dialogs = [];
  page.on('dialog', async (d) => { page.dialogs.push(d.message()); await d.dismiss(); });
  page.setDefaultTimeout(WAIT);
  return page;
}

/** Fills the simulated Salesforce login form on `page` as `user`. */
export async function salesforceLogin(page, user) {
  await page.waitForSelector('#username');
  await page.fill('#username', user.username);
  await page.fill('#password', user.password);
  await page.click('#Login');
}

/** A fresh browser context logged in to the dashboard as `user`. */
export async function login(user) {
  const { context, page } = await freshPage();
  await page.goto(`${D}/ui/`);
  await page.click('#login');
  await page.waitForSelector('#username');
  await shoot(page, 'salesforce-login');
  await salesforceLogin(page, user);
  await page.waitForURL(`${D}/ui/requests`);
  return { context, page };
}

export async function shoot(page, name) {
  if (!process.env.SCREENSHOTS) return;
  fs.mkdirSync(process.env.SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(process.env.SCREENSHOTS, `${name}.png`), fullPage: true });
}

export async function noXss(page) {
  assert.deepEqual(page.dialogs, [], `a dialog opened on ${page.url()}`);
  assert.equal(await page.evaluate(() => window.__xss), undefined, `script ran on ${page.url()}`);
}

/** An HTTP server on another loopback port (another origin) answering `handler(req, res)`; returns its URL. */
export async function otherOrigin(handler) {
  const server = http.createServer(handler);
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { server, url: `http://127.0.0.1:${server.address().port}` };
}

/** GET `url` from inside `page` (so with its session cookie, same-origin), redirects not followed: a
 * logged-out answer (a redirect to the login page) shows as status 0 instead of the login page's 200. */
export async function fetchIn(page, url) {
  return page.evaluate(async (u) => {
    const r = await fetch(u, { redirect: 'manual', credentials: 'same-origin' });
    return { status: r.status, text: r.type === 'opaqueredirect' ? '' : await r.text() };
  }, url);
}
