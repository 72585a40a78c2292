#!/usr/bin/env python3
"""Runs simple-salesforce's Bulk API 2.0 client (`sf.bulk2`) against `creditlink sim salesforce`.

Usage: simple_salesforce_bulk2_check.py <info-file>
Exits non-zero (with the failing step) on the first mismatch. Like simple_salesforce_check.py, a
requests.Session subclass rewrites simple-salesforce's https URLs to the simulator's plain-http address.
"""
import csv
import io
import sys

import to_sim
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceOperationError

info, SIM = to_sim.load(sys.argv[1])
ToSim = to_sim.session_class(SIM)


def step(name):
    print(f"simple-salesforce bulk2: {name}", flush=True)


def rows(text):
    return list(csv.DictReader(io.StringIO(text)))


form = info["integration"]["token_request"]["form"]
bank = info["banks"][0]["account_id"]
sf = Salesforce(consumer_key=form["client_id"], consumer_secret=form["client_secret"], domain="bureau.my",
                session=ToSim(), version="62.0")
bulk = sf.bulk2.Credit_Record__c

step("upsert 250 records in jobs of 100, one of them too long for its field")
records = [{"Record_Key__c": f"B2-{i:03}", "Furnisher__c": bank, "Account_Number__c": f"B2-ACC-{i}",
            "Product_Type__c": "Installment"} for i in range(250)]
records[7]["Account_Number__c"] = "9" * 31
jobs = bulk.upsert(records=records, external_id_field="Record_Key__c", batch_size=100, wait=1)
assert len(jobs) == 3, jobs
assert sum(j["numberRecordsProcessed"] for j in jobs) == 250, jobs
assert sum(j["numberRecordsFailed"] for j in jobs) == 1, jobs
assert [j["numberRecordsTotal"] for j in jobs] == [100, 100, 50], jobs

step("successful, failed and unprocessed results map back by Record_Key__c")
first = jobs[0]["job_id"]
ok = rows(bulk.get_successful_records(first))
assert len(ok) == 99 and all(r["sf__Created"] == "true" and r["sf__Id"].startswith("a02") for r in ok), ok[:2]
failed = rows(bulk.get_failed_records(first))
assert len(failed) == 1 and failed[0]["Record_Key__c"] == "B2-007", failed
assert failed[0]["sf__Error"].startswith("STRING_TOO_LONG:") and failed[0]["sf__Error"].endswith(
    ":Account_Number__c --"), failed
assert rows(bulk.get_unprocessed_records(first)) == []
everything = bulk.get_all_ingest_records(jobs[1]["job_id"])
assert len(everything["successfulRecords"]) == 100 and not everything["failedRecords"], everything.keys()

step("the same upsert again updates (sf__Created false) and stores nothing new")
again = bulk.upsert(records=records[:10], external_id_field="Record_Key__c", wait=1)
again_ok = rows(bulk.get_successful_records(again[0]["job_id"]))
assert len(again_ok) == 9 and all(r["sf__Created"] == "false" for r in again_ok), again_ok[:2]
count = sf.query("SELECT COUNT() FROM Credit_Record__c WHERE Record_Key__c LIKE 'B2-%'")["totalSize"]
assert count == 249, count

step("update and delete by Id")
ids = [r["sf__Id"] for r in ok[:5]]
updated = bulk.update(records=[{"Id": i, "Balance__c": "12.5"} for i in ids], wait=1)
assert updated[0]["numberRecordsFailed"] == 0, updated
assert sf.Credit_Record__c.get(ids[0])["Balance__c"] == 12.5
deleted = bulk.delete(records=[{"Id": i} for i in ids], wait=1)
assert deleted[0]["numberRecordsProcessed"] == 5 and deleted[0]["numberRecordsFailed"] == 0, deleted
count = sf.query("SELECT COUNT() FROM Credit_Record__c WHERE Record_Key__c LIKE 'B2-%'")["totalSize"]
assert count == 244, count

step("a job that fails (unknown column) raises with Salesforce's errorMessage")
try:
    bulk.insert(records=[{"Nope__c": "x"}], wait=1)
    raise AssertionError("unknown column accepted")
except SalesforceOperationError as e:
    assert "Field name not found : Nope__c" in str(e), e

print("simple-salesforce bulk2: all checks passed")
