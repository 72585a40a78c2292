// The dashboard in a real browser (Debian's chromium via playwright-core) against one running sandbox
// (`run.sh` starts it and exports SANDBOX_JSON). Data is posted through the bank API first; then every test
// logs in through the simulated Salesforce login page like a person would.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { D, bankA, bankB, repA, repB, admin, XSS, launch, closeBrowser, freshPage, token, login, shoot, noXss,
  otherOrigin, fetchIn } from './support.mjs';

const FORMULA = '=HYPERLINK("http://evil.example","click")';
const PAGED = 27; // more than one page (the default page size is 25)

let evil; // a page of another origin (same site: 127.0.0.1, another port), for the cross-site tests
let evilUrl;
const ids = { a: {}, b: [] };

/** A consent given yesterday (the mappings refuse future consents and too old ones). */
function yesterday() {
  return new Date(Date.now() - 86_400_000);
}

/** Demo Bank A posts the default shape; Demo Bank B its own mapping's shape (mappings/banks/DBB/). */
function body(bank, reference) {
  if (bank === bankB) {
    const d = yesterday();
    const p = (n) => String(n).padStart(2, '0');
    return { loanReference: reference, applicantKind: 'P',
      applicant: { idNumber: 'CW-1975061502', givenName: 'Jan', familyName: 'Janssen', birthDate: '15-06-1975' },
      reason: 'LOAN',
      consentAt: `${p(d.getUTCDate())}-${p(d.getUTCMonth() + 1)}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}` };
  }
  return { reference,
    subject: { type: 'person', national_id: 'CW-1980013101', first_name: 'Maria', last_name: 'Martina',
      date_of_birth: '1980-01-31' },
    purpose: 'loan_application',
    consent: { given_at: yesterday().toISOString().replace(/\.\d+Z$/, 'Z') } };
}

async function post(bank, tok, reference) {
  const r = await fetch(`${D}/api/v1/report-requests`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' },
    body: JSON.stringify(body(bank, reference)),
  });
  assert.equal(r.status, 202, `posting ${reference}: ${await r.clone().text()}`);
  return (await r.json()).id;
}

before(async () => {
  const [ta, tb] = [await token(bankA), await token(bankB)];
  for (let i = 0; i < PAGED; i++) {
    const ref = `LN-PAGE-${String(i).padStart(4, '0')}`;
    ids.a[ref] = await post(bankA, ta, ref);
  }
  for (const x of XSS) ids.a[x] = await post(bankA, ta, x);
  ids.a[FORMULA] = await post(bankA, ta, FORMULA);
  for (let i = 0; i < 3; i++) ids.b.push(await post(bankB, tb, `BANKB-SECRET-${i}`));
  await launch();
  ({ server: evil, url: evilUrl } = await otherOrigin((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    // The attacker's pages: a form that posts to the dashboard, and a credentialed cross-origin fetch.
    if (req.url.startsWith('/form')) {
      res.end(`<form id=f method=post action="${D}/ui/logout"><input name=csrf value=guess></form>
               <script>document.getElementById('f').submit()</script>`);
    } else {
      res.end('<p>another origin</p>');
    }
  }));
});

after(async () => {
  await closeBrowser();
  evil?.close();
});

async function references(page) {
  return page.$$eval('#history tbody td.reference', (tds) => tds.map((td) => td.textContent));
}

test('login sets a __Host- session cookie (HttpOnly, Secure, SameSite=Strict); logout ends the session', async () => {
  const { context, page } = await login(repA);
  assert.match(await page.textContent('#who'), /rep@demobanka\.sim/);
  const cookies = await context.cookies(); // (a URL filter would hide Secure cookies of http://127.0.0.1)
  const session = cookies.find((c) => c.name === '__Host-creditlink-session');
  assert.ok(session, 'session cookie');
  assert.equal(session.httpOnly, true);
  assert.equal(session.secure, true);
  assert.equal(session.sameSite, 'Strict');
  assert.equal(session.path, '/');
  assert.equal(await page.evaluate(() => document.cookie), '', 'no cookie readable by script');
  const headers = (await page.goto(`${D}/ui/requests`)).headers();
  assert.match(headers['content-security-policy'], /default-src 'self'/);
  assert.match(headers['content-security-policy'], /frame-ancestors 'none'/);
  assert.match(headers['content-security-policy'], /form-action 'self'/);
  assert.equal(headers['x-content-type-options'], 'nosniff');
  assert.equal(headers['referrer-policy'], 'same-origin');
  await page.click('#logout button');
  await page.waitForURL(`${D}/ui/`);
  await page.goto(`${D}/ui/requests`);
  assert.equal(page.url(), `${D}/ui/`, 'logged out: back at the login page');
  assert.ok(await page.$('#login'));
  await context.close();
});

test('a wrong password stays on the login page with Salesforce\'s message', async () => {
  const { context, page } = await freshPage();
  await page.goto(`${D}/ui/login`);
  await page.fill('#username', repA.username);
  await page.fill('#password', 'not-the-password');
  await page.click('#Login');
  assert.match(await page.textContent('#error'), /check your username and password/);
  await context.close();
});

test('history: newest first, paging, filters on reference, status and dates', async () => {
  const { context, page } = await login(repA);
  const total = PAGED + XSS.length + 1;
  assert.match(await page.textContent('#count'), new RegExp(`^${total} requests`));
  const first = await references(page);
  assert.equal(first.length, 25);
  assert.equal(first[0], FORMULA, 'the newest request first');
  await shoot(page, 'history');
  await page.click('#next');
  assert.match(await page.textContent('#page'), /Page 2 of 2/);
  const second = await references(page);
  assert.equal(second.length, total - 25);
  assert.equal(second.at(-1), 'LN-PAGE-0000', 'the oldest request last');
  await page.click('#prev');
  assert.match(await page.textContent('#page'), /Page 1 of 2/);

  await page.fill('input[name=q]', 'ln-page-0007');
  await page.click('#apply');
  assert.deepEqual(await references(page), ['LN-PAGE-0007']);

  await page.fill('input[name=q]', '');
  await page.selectOption('select[name=status]', 'failed');
  await page.click('#apply');
  for (const s of await page.$$eval('#history tbody .status', (e) => e.map((x) => x.textContent))) assert.equal(s, 'failed');

  const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
  await page.goto(`${D}/ui/requests?from=${tomorrow}`);
  assert.match(await page.textContent('#count'), /^0 requests/);
  const today = new Date().toISOString().slice(0, 10);
  await page.goto(`${D}/ui/requests?from=${today}&to=${today}`);
  assert.match(await page.textContent('#count'), new RegExp(`^${total} requests`));
  assert.ok(await page.$('#chart rect.ok'), 'the daily chart is drawn');
  await context.close();
});

test('CSV export: what the filters show, UTF-8 with BOM, formulas neutralised', async () => {
  const { context, page } = await login(repA);
  await page.goto(`${D}/ui/requests?q=HYPERLINK`);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
  const file = path.join(process.env.DOWNLOADS, 'export.csv');
  await download.saveAs(file);
  const bytes = fs.readFileSync(file);
  assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'UTF-8 BOM');
  const lines = bytes.subarray(3).toString('utf8').split('\r\n').filter(Boolean);
  assert.equal(lines[0], 'id,bank,created_at,reference,status,reason,salesforce_id,attempts');
  assert.equal(lines.length, 2, 'only the filtered row');
  assert.ok(lines[1].includes(`"'=HYPERLINK(""http://evil.example"",""click"")"`), lines[1]);

  const [all] = await Promise.all([page.waitForEvent('download'), page.goto(`${D}/ui/requests`).then(() => page.click('#export'))]);
  await all.saveAs(file);
  const text = fs.readFileSync(file, 'utf8');
  assert.equal(text.trim().split('\r\n').length, 1 + PAGED + XSS.length + 1, 'every page, not just the first');
  assert.ok(!text.includes('BANKB'), 'no other bank in the export');
  await context.close();
});

test('XSS payloads posted through the bank API never execute on any page and show as text', async () => {
  const { context, page } = await login(repA);
  await page.addInitScript(() => { window.__xss = undefined; });
  for (const p of [1, 2]) {
    await page.goto(`${D}/ui/requests?page=${p}`);
    await noXss(page);
  }
  await page.goto(`${D}/ui/requests?page=1`);
  const shown = await references(page);
  for (const x of XSS) assert.ok(shown.includes(x), `payload shown as text: ${x}`);
  for (const x of XSS) {
    await page.goto(`${D}/ui/requests/${ids.a[x]}`);
    assert.equal(await page.textContent('#reference'), x);
    await noXss(page);
    await page.goto(`${D}/ui/requests?q=${encodeURIComponent(x)}`);
    await noXss(page);
  }
  await shoot(page, 'detail');
  await context.close();
  const adminSession = await login(admin);
  for (const url of ['/ui/requests', '/ui/requests?page=2', '/ui/admin/dead-letters', '/ui/admin/endpoints']) {
    await adminSession.page.goto(`${D}${url}`);
    await noXss(adminSession.page);
  }
  await adminSession.context.close();
});

test('a cross-site form POST and a credentialed cross-origin fetch are refused', async () => {
  const { context, page } = await login(repA);
  const attacker = await context.newPage();
  const posts = [];
  context.on('response', (r) => { if (r.url() === `${D}/ui/logout`) posts.push(r.status()); });
  const [response] = await Promise.all([
    attacker.waitForResponse((r) => r.url() === `${D}/ui/logout`),
    attacker.goto(`${evilUrl}/form`),
  ]);
  assert.equal(response.status(), 403, 'the forged logout is refused');
  await attacker.goto(`${evilUrl}/`);
  const outcome = await attacker.evaluate(async (target) => {
    try {
      const r = await fetch(target, { method: 'POST', credentials: 'include', mode: 'no-cors',
        headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=guess' });
      return r.type;
    } catch (e) {
      return `error: ${e}`;
    }
  }, `${D}/ui/logout`);
  // Opaque at best; Chromium even fails it as a network error (Cross-Origin-Resource-Policy: same-origin).
  assert.ok(outcome === 'opaque' || outcome.startsWith('error:'), outcome);
  const readable = await attacker.evaluate(async (target) => {
    try { await (await fetch(target, { credentials: 'include' })).text(); return 'read'; } catch { return 'blocked'; }
  }, `${D}/ui/requests`);
  assert.equal(readable, 'blocked', 'no CORS: another origin cannot read a page');
  await page.goto(`${D}/ui/requests`);
  assert.equal(page.url(), `${D}/ui/requests`, 'still logged in: neither request logged the user out');
  assert.ok(posts.length >= 1 && posts.every((s) => s === 403), `forged logouts refused: ${posts}`);
  await context.close();
});

test("bank A's representative never sees bank B's data, and the other way round", async () => {
  const { context, page } = await login(repA);
  await page.goto(`${D}/ui/requests?q=BANKB`);
  assert.match(await page.textContent('#count'), /^0 requests/);
  for (const id of ids.b) {
    for (const suffix of ['', '/report']) {
      const r = await page.goto(`${D}/ui/requests/${id}${suffix}`);
      assert.equal(r.status(), 404, `bank B's ${id}${suffix}`);
    }
  }
  const r = await fetchIn(page, `${D}/ui/requests.csv?q=BANKB`);
  assert.equal(r.status, 200);
  // (fetch's text() drops the BOM)
  assert.equal(r.text.trim(), 'id,bank,created_at,reference,status,reason,salesforce_id,attempts', 'header only');
  await context.close();

  const b = await login(repB);
  const refs = await references(b.page);
  assert.deepEqual(refs.sort(), ['BANKB-SECRET-0', 'BANKB-SECRET-1', 'BANKB-SECRET-2']);
  const rb = await b.page.goto(`${D}/ui/requests/${ids.a['LN-PAGE-0001']}`);
  assert.equal(rb.status(), 404);
  const forbidden = await b.page.goto(`${D}/ui/admin/dead-letters`);
  assert.equal(forbidden.status(), 403, 'admin views are for admins');
  await b.context.close();

  const adm = await login(admin);
  assert.match(await adm.page.textContent('#count'), new RegExp(`^${PAGED + XSS.length + 1 + 3} requests`));
  await adm.page.selectOption('select[name=bank]', 'DBB');
  await adm.page.click('#apply');
  assert.match(await adm.page.textContent('#count'), /^3 requests/);
  await adm.page.goto(`${D}/ui/admin/endpoints`);
  assert.match(await adm.page.textContent('#endpoints'), /Demo Bank B/);
  await shoot(adm.page, 'admin-endpoints');
  await adm.context.close();
});
