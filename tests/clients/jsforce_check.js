// Runs the independent npm client jsforce against `creditlink sim salesforce`.
// Usage: node jsforce_check.js <info-file> <repo-root>. Exits non-zero on the first mismatch.
'use strict';
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const jsforce = require('jsforce');

const info = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const SIM = info.salesforce_url.replace(/\/$/, '');
const form = info.integration.token_request.form;
const bank = info.banks[0].account_id;
const step = (s) => console.log(`jsforce: ${s}`);
const root = process.argv[3];
const JWT_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const INTEGRATION_KEY = '3MVG9creditlink.sandbox.consumer';

// jsforce does not sign assertions itself: an RS256 JWT with the sandbox key, `exp` within 3 minutes.
function assertion() {
  const b64url = (b) => Buffer.from(b).toString('base64url');
  const header = b64url(JSON.stringify({ alg: 'RS256' }));
  const claims = b64url(JSON.stringify({
    iss: INTEGRATION_KEY, sub: 'creditlink-integration@bureau.sim', aud: 'https://login.salesforce.com',
    exp: Math.floor(Date.now() / 1000) + 170,
  }));
  const key = fs.readFileSync(path.join(root, 'config/sandbox/jwt_private_key.pem'));
  const signature = crypto.sign('RSA-SHA256', Buffer.from(`${header}.${claims}`), key);
  return `${header}.${claims}.${b64url(signature)}`;
}

(async () => {
  step('JWT bearer login, then a new assertion after the org expires every token (refreshFn on 401)');
  const jwtConn = new jsforce.Connection({
    oauth2: { loginUrl: SIM, clientId: INTEGRATION_KEY }, // jsforce adds client_id to the JWT grant
    version: '62.0',
    refreshFn: async (c, callback) => {
      try {
        const res = await c.oauth2.requestToken({ grant_type: JWT_GRANT, assertion: assertion() });
        callback(null, res.access_token, res);
      } catch (e) {
        callback(e);
      }
    },
  });
  await jwtConn.authorize({ grant_type: JWT_GRANT, assertion: assertion() });
  assert.equal(jwtConn.userInfo.id, '0055Y00000INTEGQA5');
  const firstToken = jwtConn.accessToken;
  const expired = await fetch(`${SIM}/__sim/faults`, {
    method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ expire_tokens: true }),
  });
  assert.equal(expired.status, 200);
  const counted = await jwtConn.query('SELECT COUNT() FROM Account');
  assert.ok(counted.totalSize >= 3);
  assert.notEqual(jwtConn.accessToken, firstToken);

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
