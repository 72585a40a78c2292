#!/usr/bin/env python3
"""One Bulk API 2.0 upsert job of N rows against a running `creditlink sim salesforce`: upload, processing
time (close to JobComplete, polled every 0.5 s), result download, API calls. Usage: sim_ingest.py INFO_FILE N"""
import json, sys, time, requests
info = json.load(open(sys.argv[1])); SIM = info["salesforce_url"].rstrip("/")
form = info["integration"]["token_request"]["form"]
tok = requests.post(f"{SIM}/services/oauth2/token", data=form, timeout=30).json()["access_token"]
h = {"Authorization": f"Bearer {tok}"}
bank = info["banks"][0]["account_id"]; n = int(sys.argv[2])
csv = "Record_Key__c,Furnisher__c,Account_Number__c,Product_Type__c,Balance__c\n" + "".join(
    f"BB-{i:07},{bank},ACC-{i},Installment,{i}.5\n" for i in range(n))
api = f"{SIM}/services/data/v62.0/jobs/ingest"
t0 = time.time()
job = requests.post(api, json={"object": "Credit_Record__c", "operation": "upsert", "externalIdFieldName": "Record_Key__c"}, headers=h, timeout=60).json()
requests.put(f"{api}/{job['id']}/batches", data=csv.encode(), headers={**h, "Content-Type": "text/csv"}, timeout=300).raise_for_status()
requests.patch(f"{api}/{job['id']}", json={"state": "UploadComplete"}, headers=h, timeout=60).raise_for_status()
t1 = time.time(); polls = 0
while True:
    polls += 1
    info_ = requests.get(f"{api}/{job['id']}", headers=h, timeout=60).json()
    if info_["state"] in ("JobComplete", "Failed", "Aborted"): break
    time.sleep(0.5)
t2 = time.time()
ok = requests.get(f"{api}/{job['id']}/successfulResults", headers=h, timeout=300).text.count("\n") - 1
t3 = time.time()
stats = requests.get(f"{SIM}/__sim/stats", timeout=30).json()
print(json.dumps({"rows": n, "state": info_["state"], "processed": info_["numberRecordsProcessed"], "failed": info_["numberRecordsFailed"],
  "upload_s": round(t1-t0,2), "processing_s": round(t2-t1,2), "rows_per_s": round(n/(t2-t1)), "results_rows": ok, "results_s": round(t3-t2,2),
  "api_calls": stats["api_calls_total"], "polls": polls, "csv_mb": round(len(csv)/1e6,1)}))
