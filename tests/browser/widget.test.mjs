// The report-request widget (/ui/widget.js) on a bank's own page, in a real browser: the sandbox's demo
// intranet pages are served by the demo bank receivers, another origin than the daemon's and the one the
// sandbox's [[banks]] allowed_origins name; the test's own server is an origin no bank allows.
// Runs after dashboard.test.mjs (that file counts every request of both banks).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { D, bankA, bankB, repA, repB, admin, WAIT, launch, closeBrowser, freshPage, armed, token, salesforceLogin, shoot,
  noXss, otherOrigin } from './support.mjs';

const allowedOrigin = new URL(bankA.widget_demo_url).origin;
const WIDGET = 'creditlink-report-request';
let evil;
let evilUrl;

before(async () => {
  await launch();
  ({ server: evil, url: evilUrl } = await otherOrigin((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    if (req.url.startsWith('/widget')) {
      // Another origin copying the bank's page: same widget, same request.
      res.end(`<creditlink-report-request request='{"reference":"EVIL-1"}'></creditlink-report-request>
               <script src="${D}/ui/widget.js"></script>`);
    } else {
      res.end('<p>another origin</p>');
    }
  }));
});

after(async () => {
  await closeBrowser();
  evil?.close();
});

/** The widget's status line (its shadow root is open, so locators reach into it). */
async function widgetStatus(page) {
  return (await page.locator(`${WIDGET} .status`).textContent()) ?? '';
}

async function waitForStatus(page, pattern, timeout = WAIT) {
  await page.waitForFunction(
    ([sel, source]) => new RegExp(source).test(document.querySelector(sel)?.shadowRoot?.querySelector('.status')?.textContent ?? ''),
    [WIDGET, pattern.source],
    { timeout },
  );
}

/** Clicks the widget; logs in as `user` in the popup it opens; returns the popup. */
async function clickAndLogin(page, user) {
  const [popup] = await Promise.all([page.waitForEvent('popup'), page.click(`${WIDGET} button`)]);
  popup.setDefaultTimeout(WAIT);
  await salesforceLogin(popup, user);
  return popup;
}

/** Resolves once `popup` is closed (the widget closes it as soon as it has the session). */
function closed(popup) {
  return popup.isClosed() ? Promise.resolve() : popup.waitForEvent('close');
}

/** One HTTP call from node, with any `Origin` (which a browser would not let a page choose). */
function raw(method, url, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('the widget on a bank page of an allowed origin logs in in a popup, posts the request and shows its status', async () => {
  assert.notEqual(allowedOrigin, new URL(D).origin, 'the demo page is on another origin');
  const { context, page } = await freshPage();
  const calls = [];
  page.on('request', (r) => { if (r.url().startsWith(`${D}/ui/widget/api/`)) calls.push(r); });
  await page.goto(bankA.widget_demo_url);
  await page.evaluate(() => document.addEventListener('creditlink-status', (e) => { window.__docs = [...(window.__docs ?? []), e.detail]; }));
  const popup = await clickAndLogin(page, repA);
  await closed(popup);
  await waitForStatus(page, /^Request LN-WIDGET-DBA: (completed|rejected)/, 60_000);
  const docs = await page.evaluate(() => window.__docs);
  const id = docs[0].id;
  assert.ok(docs.every((d) => d.id === id));
  await shoot(page, 'widget');
  await noXss(page);

  // The request is the bank's own, through the bank API too; another bank does not see it.
  const mine = await fetch(`${D}/api/v1/report-requests/${id}`, { headers: { authorization: `Bearer ${await token(bankA)}` } });
  assert.equal(mine.status, 200);
  assert.equal((await mine.json()).reference, 'LN-WIDGET-DBA');
  const theirs = await fetch(`${D}/api/v1/report-requests/${id}`, { headers: { authorization: `Bearer ${await token(bankB)}` } });
  assert.equal(theirs.status, 404);

  // Nothing stored on the bank's page: no token in storage or cookies; every call without cookies.
  assert.deepEqual(await page.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie]), [0, 0, '']);
  const post = calls.find((r) => r.method() === 'POST');
  const h = await post.allHeaders();
  assert.match(h.authorization, /^Bearer /);
  assert.ok(h['x-csrf-token'], 'the CSRF token travels in a header');
  assert.equal(h.cookie, undefined);
  assert.equal(h.origin, allowedOrigin);

  // A second click reuses the session: no popup, a new request.
  let popups = 0;
  page.on('popup', () => { popups += 1; });
  await page.click(`${WIDGET} button`);
  await page.waitForFunction((first) => (window.__docs ?? []).some((d) => d.id !== first), id);
  assert.equal(popups, 0, 'no second login');
  await context.close();
});

test('a widget session works only from its own origin, with its CSRF token; CORS names only allowed origins', async () => {
  const { context, page } = await freshPage();
  const calls = [];
  page.on('request', (r) => { if (r.url().startsWith(`${D}/ui/widget/api/report-requests/`)) calls.push(r); });
  await page.goto(bankA.widget_demo_url);
  const popup = await clickAndLogin(page, repA);
  await closed(popup);
  await waitForStatus(page, /^Request LN-WIDGET-DBA: /);
  while (calls.length === 0) await page.waitForEvent('request');
  const h = await calls[0].allHeaders();
  const url = calls[0].url();
  const as = (origin, extra = {}) => ({ origin, authorization: h.authorization, 'x-csrf-token': h['x-csrf-token'], ...extra });

  const ok = await raw('GET', url, as(allowedOrigin));
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['access-control-allow-origin'], allowedOrigin);
  assert.equal(ok.headers['access-control-allow-credentials'], undefined, 'never credentials');
  const stolen = await raw('GET', url, as(evilUrl));
  assert.equal(stolen.status, 401, 'the token is bound to its origin');
  assert.equal(stolen.headers['access-control-allow-origin'], undefined, 'no CORS header for another origin');
  assert.match(stolen.headers['content-type'], /application\/problem\+json/);
  const noCsrf = await raw('GET', url, { origin: allowedOrigin, authorization: h.authorization });
  assert.equal(noCsrf.status, 403, 'the CSRF header is required');

  const preflight = (origin, method, headers) => raw('OPTIONS', `${D}/ui/widget/api/report-requests`, {
    origin, 'access-control-request-method': method, 'access-control-request-headers': headers });
  const good = await preflight(allowedOrigin, 'POST', 'authorization,content-type,idempotency-key,x-csrf-token');
  assert.equal(good.status, 204);
  assert.equal(good.headers['access-control-allow-origin'], allowedOrigin);
  assert.equal(good.headers['access-control-allow-methods'], 'POST');
  assert.match(good.headers['access-control-allow-headers'], /x-csrf-token/);
  assert.equal(good.headers['access-control-allow-credentials'], undefined);
  for (const [origin, method, headers] of [[evilUrl, 'POST', 'authorization'], [allowedOrigin, 'DELETE', 'authorization'],
    [allowedOrigin, 'POST', 'cookie'], ['null', 'POST', 'authorization']]) {
    const refused = await preflight(origin, method, headers);
    assert.equal(refused.status, 403, `${origin} ${method} ${headers}`);
    assert.equal(refused.headers['access-control-allow-origin'], undefined);
  }

  // In a browser, a page of another origin holding the stolen token cannot even send the call.
  const attacker = await context.newPage();
  await attacker.goto(`${evilUrl}/`);
  const outcome = await attacker.evaluate(async ([target, auth, csrf]) => {
    try { await fetch(target, { headers: { authorization: auth, 'x-csrf-token': csrf } }); return 'sent'; } catch { return 'blocked'; }
  }, [url, h.authorization, h['x-csrf-token']]);
  assert.equal(outcome, 'blocked');
  await context.close();
});

test('the widget on a page of an origin no bank allows is refused, and a login for an allowed origin is never handed to it', async () => {
  const { context, page } = await freshPage();
  await page.goto(`${evilUrl}/widget`);
  const [popup] = await Promise.all([page.waitForEvent('popup'), page.click(`${WIDGET} button`)]);
  await popup.waitForLoadState();
  assert.match(await popup.textContent('main'), /not allowed to use the creditlink widget/);
  assert.equal(await popup.$('#username'), null, 'no login form for this origin');
  await popup.close();
  await waitForStatus(page, /^Not logged in/);

  // The attacker's page opens the login for the bank's origin itself: the session is posted to the bank's
  // origin only, so this page receives nothing.
  await page.evaluate(() => {
    window.__got = [];
    window.addEventListener('message', (e) => window.__got.push(e.origin));
  });
  const [stolenPopup] = await Promise.all([
    page.waitForEvent('popup'),
    page.evaluate((u) => { window.open(u, 'x', 'popup'); }, `${D}/ui/widget/login?origin=${encodeURIComponent(allowedOrigin)}`),
  ]);
  stolenPopup.setDefaultTimeout(WAIT);
  await salesforceLogin(stolenPopup, repA);
  await closed(stolenPopup);
  assert.deepEqual(await page.evaluate(() => window.__got), [], 'no message reached another origin');

  // A bureau admin is not a bank representative: the widget refuses them even on an allowed page.
  const bank = await context.newPage();
  await bank.goto(bankA.widget_demo_url);
  const adminPopup = await clickAndLogin(armed(bank), admin);
  await adminPopup.waitForSelector('text=the widget is for bank representatives');
  await adminPopup.close();
  await waitForStatus(bank, /^Not logged in/);
  await context.close();
});

test("the server judges the request with the bank's mapping: problems come back field by field", async () => {
  // Demo Bank B's representative on Demo Bank A's page (the sandbox allows both banks there): Bank A's body is
  // not Bank B's mapping's shape, so the request is refused with Bank B's field problems, shown in the widget.
  const { context, page } = await freshPage();
  await page.goto(bankA.widget_demo_url);
  const popup = await clickAndLogin(page, repB);
  await closed(popup);
  await waitForStatus(page, /invalid field/);
  const problems = await page.locator(`${WIDGET} li`).allTextContents();
  assert.ok(problems.length >= 2, problems.join(' | '));
  assert.ok(problems.some((p) => p.startsWith('/applicantKind: is required')), problems.join(' | '));
  await noXss(page);
  await context.close();
});
