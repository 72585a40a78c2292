#!/usr/bin/env python3
"""Runs the independent PyPI client simple-salesforce against `creditlink sim salesforce`.

Usage: simple_salesforce_check.py <info-file> <repo-root>
Exits non-zero (with the failing step) on the first mismatch. simple-salesforce hard-codes https, so a
requests.Session subclass rewrites its URLs to the simulator's plain-http address (reference §4.2).
"""
import base64
import sys

import requests

import to_sim
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceResourceNotFound

info, SIM = to_sim.load(sys.argv[1])
root = sys.argv[2]
ToSim = to_sim.session_class(SIM)


def step(name):
    print(f"simple-salesforce: {name}", flush=True)


form = info["integration"]["token_request"]["form"]
bank = info["banks"][0]["account_id"]

step("client credentials login (Basic auth)")
sf = Salesforce(consumer_key=form["client_id"], consumer_secret=form["client_secret"], domain="bureau.my",
                session=ToSim(), version="62.0")

step("JWT bearer login")
sf_jwt = Salesforce(username="creditlink-integration@bureau.sim", consumer_key="3MVG9creditlink.sandbox.consumer",
                    privatekey_file=f"{root}/config/sandbox/jwt_private_key.pem", session=ToSim(), version="62.0")
assert sf_jwt.query("SELECT COUNT() FROM Account")["totalSize"] >= 2

step("create / get / update")
rec = {"Bank__c": bank, "Subject_Type__c": "Person", "Purpose__c": "Other", "Last_Name__c": "Py"}
created = sf.Credit_Report_Request__c.create(rec)
assert created["success"] is True and len(created["id"]) == 18, created
got = sf.Credit_Report_Request__c.get(created["id"])
assert got["Last_Name__c"] == "Py" and got["attributes"]["type"] == "Credit_Report_Request__c", got
assert sf.Credit_Report_Request__c.update(created["id"], {"Status__c": "In Progress"}) == 204
assert sf.Credit_Report_Request__c.get(created["id"])["Status__c"] == "In Progress"

step("upsert by external id: created then updated")
key = "PY-UPSERT-1"
assert sf.Credit_Report_Request__c.upsert(f"Request_Key__c/{key}", rec) == 201
assert sf.Credit_Report_Request__c.upsert(f"Request_Key__c/{key}", {"Last_Name__c": "Py2"}) == 200
assert sf.Credit_Report_Request__c.get_by_custom_id("Request_Key__c", key)["Last_Name__c"] == "Py2"

step("delete; queryAll still sees the deleted record")
assert sf.Credit_Report_Request__c.delete(created["id"]) == 204
try:
    sf.Credit_Report_Request__c.get(created["id"])
    raise AssertionError("deleted record still readable")
except SalesforceResourceNotFound:
    pass
deleted_soql = f"SELECT Id, IsDeleted FROM Credit_Report_Request__c WHERE Id = '{created['id']}'"
assert sf.query(deleted_soql)["totalSize"] == 0
with_deleted = sf.query_all(deleted_soql, include_deleted=True)
assert with_deleted["totalSize"] == 1 and with_deleted["records"][0]["IsDeleted"] is True, with_deleted

step("sObject Collections create (11 x 200) and query_all paging over 2,000 rows")
for chunk in range(11):
    records = [{"attributes": {"type": "Credit_Record__c"}, "Furnisher__c": bank,
                "Account_Number__c": f"PY-{chunk}-{i}"} for i in range(200)]
    res = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": records})
    assert len(res) == 200 and all(r["success"] for r in res), res[:2]
first = sf.query("SELECT Id, Account_Number__c FROM Credit_Record__c WHERE Account_Number__c LIKE 'PY-%'")
assert first["done"] is False and len(first["records"]) == 2000 and "nextRecordsUrl" in first, {k: first[k] for k in ("done", "totalSize")}
everything = sf.query_all("SELECT Id FROM Credit_Record__c WHERE Account_Number__c LIKE 'PY-%'")
assert everything["totalSize"] == 2200 and len(everything["records"]) == 2200, everything["totalSize"]

step("ContentVersion upload (base64 JSON) and VersionData download")
pdf = bytes(range(256)) * 40 + b"\r\n%PDF-1.7 end"
version = sf.ContentVersion.create({"Title": "Py report", "PathOnClient": "report.pdf",
                                    "VersionData": base64.b64encode(pdf).decode(), "FirstPublishLocationId": bank})
assert version["success"] is True and version["id"].startswith("068"), version
assert sf.ContentVersion.get_base64(version["id"], base64_field="VersionData") == pdf
listed = sf.query(f"SELECT VersionData FROM ContentVersion WHERE Id = '{version['id']}'")["records"][0]
assert listed["VersionData"] == f"/services/data/v62.0/sobjects/ContentVersion/{version['id']}/VersionData", listed

step("API usage from Sforce-Limit-Info")
usage = sf.api_usage.get("api-usage")
assert usage is not None and usage.used > 0 and usage.total > 0, sf.api_usage

step("the org expires every token: both logins renew their session on 401 INVALID_SESSION_ID")
old_sessions = (sf.session_id, sf_jwt.session_id)
resp = requests.put(f"{SIM}/__sim/faults", json={"expire_tokens": True}, timeout=10)
assert resp.status_code == 200, resp.text
assert sf_jwt.query("SELECT COUNT() FROM Account")["totalSize"] >= 2
assert sf.Credit_Report_Request__c.get_by_custom_id("Request_Key__c", key)["Last_Name__c"] == "Py2"
assert sf.session_id != old_sessions[0] and sf_jwt.session_id != old_sessions[1], "no new session"

step("invalid session is reported as expired")
bad = Salesforce(instance_url=SIM, session_id="00D5Y000001CLNK!bogus", session=ToSim(), version="62.0")
try:
    bad.query("SELECT Id FROM Account")
    raise AssertionError("bogus session accepted")
except SalesforceExpiredSession:
    pass

print("simple-salesforce: all checks passed")
