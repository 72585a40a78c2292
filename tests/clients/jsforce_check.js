// Runs the independent npm client jsforce against `creditlink sim salesforce`.
// Usage: node jsforce_check.js <info-file>. Exits non-zero on the first mismatch.
'use strict';
const assert = require('node:assert/strict');
const fs = require('node:fs');
const jsforce = require('jsforce');

const info = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const SIM = info.salesforce_url.replace(/\/$/, '');
const form = info.integration.token_request.form;
const bank = info.banks[0].account_id;
const step = (s) => console.log(`jsforce: ${s}`);

(async () => {
  step('client credentials login (form body, chunked)');
  const conn = new jsforce.Connection({
    oauth2: { loginUrl: SIM, clientId: form.client_id, clientSecret: form.client_secret },
    version: '62.0',
  });
  await conn.authorize({ grant_type: 'client_credentials' });
  assert.ok(conn.accessToken);
  assert.equal(conn.userInfo.organizationId.length, 18);

  step('create / retrieve / update');
  const rec = { Bank__c: bank, Subject_Type__c: 'Company', Purpose__c: 'Dispute', Company_Name__c: 'JS NV' };
  const created = await conn.sobject('Credit_Report_Request__c').create(rec);
  assert.equal(created.success, true);
  const got = await conn.sobject('Credit_Report_Request__c').retrieve(created.id);
  assert.equal(got.Company_Name__c, 'JS NV');
  await conn.sobject('Credit_Report_Request__c').update({ Id: created.id, Status__c: 'Completed' });
  assert.equal((await conn.sobject('Credit_Report_Request__c').retrieve(created.id)).Status__c, 'Completed');

  step('upsert by external id: created then updated');
  const up1 = await conn.sobject('Credit_Report_Request__c').upsert({ ...rec, Request_Key__c: 'JS-UPSERT-1' }, 'Request_Key__c');
  assert.equal(up1.success, true);
  assert.equal(up1.created, true);
  const up2 = await conn.sobject('Credit_Report_Request__c').upsert({ Request_Key__c: 'JS-UPSERT-1', Company_Name__c: 'JS2' }, 'Request_Key__c');
  assert.equal(up2.success, true);
  assert.equal(up2.created, false);

  step('collections: create 200 with one invalid record, upsert 2 by external id');
  const many = Array.from({ length: 200 }, (_, i) => ({ Furnisher__c: bank, Account_Number__c: `JS-${i}` }));
  many[7] = { Furnisher__c: bank }; // Account_Number__c is required
  const results = await conn.sobject('Credit_Record__c').create(many, { allOrNone: false });
  assert.equal(results.length, 200);
  assert.equal(results.filter((r) => r.success).length, 199);
  assert.equal(results[7].success, false);
  assert.equal(results[7].errors[0].errorCode || results[7].errors[0].statusCode, 'REQUIRED_FIELD_MISSING');
  const ups = await conn.sobject('Credit_Record__c').upsert(
    [{ Record_Key__c: 'JS-R1', Furnisher__c: bank, Account_Number__c: 'A1' },
     { Record_Key__c: 'JS-R2', Furnisher__c: bank, Account_Number__c: 'A2' }], 'Record_Key__c');
  assert.equal(ups.length, 2);
  assert.ok(ups.every((r) => r.success && r.created));

  step('query with paging (autoFetch over 2,000 rows)');
  for (let c = 0; c < 10; c++) {
    await conn.sobject('Credit_Record__c').create(
      Array.from({ length: 200 }, (_, i) => ({ Furnisher__c: bank, Account_Number__c: `JSP-${c}-${i}` })));
  }
  const res = await conn.query("SELECT Id FROM Credit_Record__c WHERE Account_Number__c LIKE 'JSP-%'")
    .run({ autoFetch: true, maxFetch: 5000 });
  assert.equal(res.totalSize, 2000);
  const all = [];
  await new Promise((resolve, reject) => {
    conn.query("SELECT Id FROM Credit_Record__c WHERE Account_Number__c LIKE 'JS%'")
      .on('record', (r) => all.push(r)).on('end', resolve).on('error', reject)
      .run({ autoFetch: true, maxFetch: 5000 });
  });
  assert.equal(all.length, 2199); // 199 valid JS- records + 2,000 JSP- records
  assert.ok(conn.limitInfo.apiUsage.used > 0);

  step('delete');
  await conn.sobject('Credit_Report_Request__c').destroy(created.id);
  await assert.rejects(conn.sobject('Credit_Report_Request__c').retrieve(created.id), (e) => e.errorCode === 'NOT_FOUND');

  step('invalid session');
  const bad = new jsforce.Connection({ instanceUrl: SIM, accessToken: '00D5Y000001CLNK!bogus', version: '62.0' });
  await assert.rejects(bad.query('SELECT Id FROM Account'), (e) => e.errorCode === 'INVALID_SESSION_ID' || e.name === 'INVALID_SESSION_ID');

  console.log('jsforce: all checks passed');
})().catch((e) => { console.error('jsforce check FAILED:', e); process.exit(1); });
