// The uploads views and the bureau admin's views in a real browser. Uploads are posted through the bank API
// (the sandbox's sample feed: accepted and rejected rows; upload names carrying XSS payloads), then viewed
// as a person would. Runs after dashboard.test.mjs (that file counts every request of both banks).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { D, info, bankA, bankB, admin, repA, repB, XSS, launch, closeBrowser, token, login, shoot, noXss,
  fetchIn } from './support.mjs';

const SAMPLE = fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)),
  '../../config/sandbox/sample-feed.csv'));
const uploads = { a: null, b: null, xss: {} };
let tokenA;

async function upload(tok, name, body = SAMPLE) {
  const r = await fetch(`${D}/api/v1/uploads?name=${encodeURIComponent(name)}`, {
    method: 'POST', headers: { authorization: `Bearer ${tok}`, 'content-type': 'text/csv' }, body,
  });
  assert.equal(r.status, 202, await r.clone().text());
  return (await r.json()).id;
}

/** Polls the bank API until the upload is processed (bounded). */
async function processed(tok, id) {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    const doc = await (await fetch(`${D}/api/v1/uploads/${id}`, { headers: { authorization: `Bearer ${tok}` } })).json();
    if (doc.status === 'completed' || doc.status === 'failed') return doc;
    await new Promise((ok) => setTimeout(ok, 250));
  }
  throw new Error(`upload ${id} not processed within 60 s`);
}

before(async () => {
  await launch();
  tokenA = await token(bankA);
  const tokenB = await token(bankB);
  uploads.a = await upload(tokenA, 'october-tradelines.csv');
  for (const x of XSS) uploads.xss[x] = await upload(tokenA, x, SAMPLE.subarray(0, SAMPLE.indexOf('\n') + 1));
  uploads.b = await upload(tokenB, 'BANKB-SECRET-UPLOAD.csv');
  for (const id of [uploads.a, ...Object.values(uploads.xss)]) await processed(tokenA, id);
  await processed(tokenB, uploads.b);
});

after(closeBrowser);

async function names(page) {
  return page.$$eval('#uploads tbody td.name', (tds) => tds.map((td) => td.textContent));
}

test("a bank representative's uploads: history, detail with row verdicts and remedies, errors.csv", async () => {
  const expected = await processed(tokenA, uploads.a);
  assert.ok(expected.counts.rejected > 0 && expected.counts.accepted + expected.counts.updated + expected.counts.unchanged > 0);
  const { context, page } = await login(repA);
  await page.click('#nav-uploads');
  await page.waitForURL(`${D}/ui/uploads`);
  assert.match(await page.textContent('#count'), new RegExp(`^${1 + XSS.length} uploads`));
  assert.ok((await names(page)).includes('october-tradelines.csv'));
  await page.fill('input[name=q]', 'OCTOBER');
  await page.click('#apply');
  assert.deepEqual(await names(page), ['october-tradelines.csv']);
  await shoot(page, 'uploads');

  await page.click(`#uploads tbody tr[data-id="${uploads.a}"] a`);
  await page.waitForURL(`${D}/ui/uploads/${uploads.a}`);
  assert.equal(await page.textContent('#status'), 'completed');
  assert.match(await page.textContent('#counts'), new RegExp(`${expected.counts.rejected} rejected`));
  await page.selectOption('select[name=outcome]', 'rejected');
  await page.click('#apply');
  const verdicts = await page.$$eval('#verdicts tbody tr[data-row]', (trs) => trs.map((tr) => tr.dataset.row));
  assert.equal(verdicts.length, expected.counts.rejected);
  const codes = await page.$$eval('#verdicts td.code', (tds) => tds.map((td) => td.textContent));
  const remedies = await page.$$eval('#verdicts td.remedy', (tds) => tds.map((td) => td.textContent));
  assert.ok(codes.length >= verdicts.length && codes.every((c) => /^[a-z_]+$/.test(c)), codes.join());
  assert.ok(remedies.every((r) => r.length > 0), 'every problem has a remedy');
  await shoot(page, 'upload-detail');

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#errors-csv')]);
  const file = path.join(process.env.DOWNLOADS, 'errors.csv');
  await download.saveAs(file);
  const lines = fs.readFileSync(file, 'utf8').trim().split('\r\n');
  assert.match(lines[0], /^account_number,.*,error_row,error_code,error_field,error_message,error_remedy$/);
  const severities = await page.$$eval('#verdicts td.severity', (tds) => tds.map((td) => td.textContent));
  assert.equal(lines.length - 1, severities.filter((s) => s === 'error').length, 'one line per error');
  const api = await (await fetch(`${D}/api/v1/uploads/${uploads.a}/errors.csv`, { headers: { authorization: `Bearer ${tokenA}` } })).text();
  assert.equal(api.trim(), lines.join('\r\n'), 'the same errors.csv as the bank API');

  const [exported] = await Promise.all([page.waitForEvent('download'),
    page.goto(`${D}/ui/uploads?q=october`).then(() => page.click('#export'))]);
  await exported.saveAs(file);
  const bytes = fs.readFileSync(file);
  assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'UTF-8 BOM');
  const rows = bytes.subarray(3).toString('utf8').trim().split('\r\n');
  assert.equal(rows[0], 'id,bank,name,status,received_at,completed_at,rows,accepted,updated,unchanged,duplicate,rejected,warnings,reinstated');
  assert.equal(rows.length, 2);
  assert.ok(rows[1].startsWith(`${uploads.a},DBA,october-tradelines.csv,completed,`));
  await context.close();
});

test('XSS payloads in upload names never execute on the uploads pages', async () => {
  const { context, page } = await login(repA);
  await page.addInitScript(() => { window.__xss = undefined; });
  await page.goto(`${D}/ui/uploads`);
  await noXss(page);
  const shown = await names(page);
  for (const x of XSS) assert.ok(shown.includes(x), `payload shown as text: ${x}`);
  for (const x of XSS) {
    await page.goto(`${D}/ui/uploads/${uploads.xss[x]}`);
    assert.equal(await page.textContent('#name'), x);
    await noXss(page);
    await page.goto(`${D}/ui/uploads?q=${encodeURIComponent(x)}`);
    await noXss(page);
  }
  await context.close();
});

test("bank A never sees bank B's uploads (list, detail, errors.csv, export), and the other way round", async () => {
  const { context, page } = await login(repA);
  await page.goto(`${D}/ui/uploads?q=BANKB`);
  assert.match(await page.textContent('#count'), /^0 uploads/);
  for (const suffix of ['', '/errors.csv']) {
    const r = await fetchIn(page, `${D}/ui/uploads/${uploads.b}${suffix}`);
    assert.equal(r.status, 404, `bank B's upload${suffix}`);
  }
  const own = await fetchIn(page, `${D}/ui/uploads/${uploads.a}/errors.csv`);
  assert.equal(own.status, 200, 'the same call works for its own upload');
  const csv = await fetchIn(page, `${D}/ui/uploads.csv`);
  assert.equal(csv.status, 200);
  assert.ok(csv.text.includes(uploads.a), 'the export holds the bank\'s own uploads');
  assert.ok(!csv.text.includes('BANKB') && !csv.text.includes(uploads.b), 'no other bank in the export');
  await context.close();

  const b = await login(repB);
  await b.page.goto(`${D}/ui/uploads`);
  assert.deepEqual(await names(b.page), ['BANKB-SECRET-UPLOAD.csv']);
  assert.equal((await fetchIn(b.page, `${D}/ui/uploads/${uploads.a}`)).status, 404);
  for (const url of ['/ui/admin/mappings', '/ui/admin/gatekeeper', '/ui/admin/vault-audit']) {
    assert.equal((await b.page.goto(`${D}${url}`)).status(), 403, `${url} is for admins`);
  }
  await b.context.close();

  const adm = await login(admin);
  await adm.page.goto(`${D}/ui/uploads`);
  assert.match(await adm.page.textContent('#count'), new RegExp(`^${1 + XSS.length + 1} uploads`));
  await adm.page.selectOption('select[name=bank]', 'DBB');
  await adm.page.click('#apply');
  assert.deepEqual(await names(adm.page), ['BANKB-SECRET-UPLOAD.csv']);
  await adm.context.close();
});

test("admin views: the mapping version in use, the gatekeeper's last report, the vault audit log", async () => {
  // A gatekeeper run (dry) and a report download, so both views have something of this test's own to show.
  const ran = await fetch(`${info.admin.url}/records/gatekeeper`, {
    method: 'POST', headers: { authorization: `Bearer ${info.admin.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ dry_run: true }),
  });
  assert.equal(ran.status, 200, await ran.clone().text());
  const report = await ran.json();
  const id = await completedRequest();
  const pdf = await fetch(`${D}/api/v1/report-requests/${id}/report`, { headers: { authorization: `Bearer ${tokenA}` } });
  assert.equal(pdf.status, 200);

  const { context, page } = await login(admin);
  await page.goto(`${D}/ui/admin/mappings`);
  assert.match(await page.textContent('#mapping-version'), /^[0-9a-f]{16}$/);
  assert.match(await page.textContent('#mappings'), /Demo Bank B \(DBB\)/);
  await shoot(page, 'admin-mappings');
  await noXss(page);

  await page.goto(`${D}/ui/admin/gatekeeper`);
  assert.match(await page.textContent('#last-run'), /dry run/);
  const c = report.counts;
  assert.equal(await page.textContent('#gatekeeper-counts'),
    `${c.terminated} terminated, ${c.warned} warned, ${c.skipped_dispute} skipped (in dispute), ${c.skipped_closed} skipped (closed)`);
  await shoot(page, 'admin-gatekeeper');

  await page.goto(`${D}/ui/admin/vault-audit`);
  const rows = await page.$$eval('#vault-audit tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  assert.ok(rows.some((r) => r[1] === 'bank DBA' && r[2] === id && r[3] === 'get' && r[4] === 'ok'), JSON.stringify(rows.slice(0, 3)));
  assert.ok(rows.some((r) => r[2] === id && r[3] === 'put'), 'the report was stored');
  await shoot(page, 'admin-vault-audit');
  await context.close();
});

/** A report request of bank A that the simulated bureau completed (it rejects every 5th: try a few). */
async function completedRequest() {
  const given = new Date(Date.now() - 3_600_000).toISOString().replace(/\.\d+Z$/, 'Z');
  for (let i = 0; i < 3; i++) {
    const r = await fetch(`${D}/api/v1/report-requests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokenA}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reference: `LN-VAULT-${i}`, subject: { type: 'person', national_id: 'CW-1980013101',
        first_name: 'Maria', last_name: 'Martina', date_of_birth: '1980-01-31' }, purpose: 'loan_application',
      consent: { given_at: given } }),
    });
    const { id } = await r.json();
    const until = Date.now() + 30_000;
    while (Date.now() < until) {
      const doc = await (await fetch(`${D}/api/v1/report-requests/${id}`, { headers: { authorization: `Bearer ${tokenA}` } })).json();
      if (doc.status === 'completed') return id;
      if (['rejected', 'failed', 'action_required'].includes(doc.status)) break;
      await new Promise((ok) => setTimeout(ok, 250));
    }
  }
  throw new Error('no request completed');
}
