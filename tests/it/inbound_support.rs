//! Harness for the inbound tests: a simulated org on port 0, a temp data dir with store, outbox and vault, the
//! listener router served on 127.0.0.1:0, and helpers that play the bureau (record edits through the sim's
//! control surface, ContentVersion uploads, hand-built SOAP envelopes).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use creditlink::config::{BankConfig, Cidr};
use creditlink::inbound::{Inbound, InboundSettings, MirrorOutcome};
use creditlink::mapping::MappingSet;
use creditlink::outbox::{ListFilter, Message, Outbox, RetryPolicy};
use creditlink::salesforce::{
    AppCredentials, AuthFlow, ClientSettings, ContentUpload, JsonMap, SalesforceClient,
};
use creditlink::sim::SimHandle;
use creditlink::store::{Durability, Store};
use creditlink::vault::{KeyId, Keyring, Vault, VaultLimits, generate_key_file};
use secrecy::SecretString;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::task::JoinHandle;

use crate::sim_support::{self, BANK_A, INTEGRATION_KEY};

pub const ORG_ID: &str = "00D5Y000001CLNKUA4";
pub const SECRET: &str = "listener-secret-7f3a9c2e5b1d4f6a";
pub const CONTACT: &str = "credit-desk@bank-a.example";
pub const PUBLIC_URL: &str = "https://creditlink.test";
/// Small, so the oversized-body test does not need megabytes.
pub const MAX_SOAP_BYTES: usize = 64 * 1024;

/// One test's world. Dropping it stops the listener and the sim.
pub struct Harness {
    pub sim: SimHandle,
    pub dir: TempDir,
    /// Held so the store stays open for the whole test.
    _store: Store,
    pub outbox: Outbox,
    pub client: SalesforceClient,
    pub inbound: Inbound,
    pub listener_url: String,
    server: JoinHandle<()>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub fn settings(allowed_sources: Vec<Cidr>) -> InboundSettings {
    InboundSettings {
        org_id: ORG_ID.into(),
        listener_secret: Some(SecretString::from(SECRET)),
        allowed_sources,
        poll_interval: Duration::from_secs(30),
        poll_overlap: Duration::from_secs(120),
        max_soap_bytes: MAX_SOAP_BYTES,
        public_url: url::Url::parse(PUBLIC_URL).expect("literal url"),
    }
}

pub async fn start() -> Harness {
    start_with(settings(Vec::new())).await
}

pub async fn start_with(settings: InboundSettings) -> Harness {
    start_with_vault(settings, VaultLimits::default()).await
}

/// [`start_with`] with the vault's size limit set.
pub async fn start_with_vault(settings: InboundSettings, limits: VaultLimits) -> Harness {
    let sim = sim_support::start().await;
    let dir = data_dir();
    let (store, outbox, client, inbound) = open_with(&sim, dir.path(), settings, limits).await;
    let (listener_url, server) = serve(&inbound).await;
    Harness {
        sim,
        dir,
        _store: store,
        outbox,
        client,
        inbound,
        listener_url,
        server,
    }
}

/// A temp data dir with a vault key in `keys/`.
pub fn data_dir() -> TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).expect("key dir");
    generate_key_file(&keys, &KeyId::new("k1").expect("key id")).expect("key file");
    dir
}

/// Opens (or reopens) everything on `dir`: what a daemon restart does.
pub async fn open(
    sim: &SimHandle,
    dir: &Path,
    settings: InboundSettings,
) -> (Store, Outbox, SalesforceClient, Inbound) {
    open_with(sim, dir, settings, VaultLimits::default()).await
}

/// [`open`] with the vault's size limit set.
pub async fn open_with(
    sim: &SimHandle,
    dir: &Path,
    settings: InboundSettings,
    limits: VaultLimits,
) -> (Store, Outbox, SalesforceClient, Inbound) {
    let store = Store::open(&dir.join("store"), Durability::GroupCommit).expect("store");
    let outbox = Outbox::open(store.clone(), RetryPolicy::default()).expect("outbox");
    let client = integration_client(sim);
    let keyring = Keyring::from_dir(&dir.join("keys")).expect("keyring");
    let vault = Vault::open(&dir.join("vault"), keyring, limits).expect("vault");
    let mappings = MappingSet::load_dir(&manifest_path("mappings")).expect("mappings load");
    let inbound = Inbound::new(
        settings,
        store.clone(),
        outbox.clone(),
        client.clone(),
        Arc::new(vault),
        Arc::new(ArcSwap::from_pointee(mappings)),
        vec![bank_a()],
    )
    .expect("inbound");
    (store, outbox, client, inbound)
}

async fn serve(inbound: &Inbound) -> (String, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = inbound
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), task)
}

pub fn bank_a() -> BankConfig {
    BankConfig {
        account_id: BANK_A.into(),
        code: "DBA".into(),
        name: "Demo Bank A".into(),
        mapping_variant: None,
        webhook_url: None,
        webhook_secret: None,
        webhook_secret_previous: None,
        contacts: vec![CONTACT.into()],
        allowed_origins: Vec::new(),
    }
}

pub fn manifest_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub fn integration_client(sim: &SimHandle) -> SalesforceClient {
    let secret = std::fs::read_to_string(manifest_path("config/sandbox/creditlink_client_secret"))
        .expect("client secret file");
    SalesforceClient::new(ClientSettings {
        login_url: url::Url::parse(sim.base_url()).expect("sim url"),
        api_version: "62.0".into(),
        auth: AuthFlow::ClientCredentials(AppCredentials {
            client_id: INTEGRATION_KEY.into(),
            client_secret: SecretString::from(secret.trim_end().to_owned()),
        }),
        introspection: None,
        timeout: Duration::from_secs(20),
    })
    .expect("client")
}

impl Harness {
    /// Creates a request as creditlink would (through the integration user); returns (record id, request key).
    pub async fn create_request(&self) -> (String, String) {
        let key = uuid::Uuid::now_v7().to_string();
        let fields: JsonMap = serde_json::from_value(json!({
            "Request_Key__c": key,
            "Bank__c": BANK_A,
            "Bank_Reference__c": "LN-2026-000123",
            "Subject_Type__c": "Person",
            "National_Id__c": "CW-1980013101",
            "First_Name__c": "Maria",
            "Last_Name__c": "Martina",
            "Purpose__c": "Loan Application",
        }))
        .expect("object");
        let saved = self
            .client
            .create("Credit_Report_Request__c", &fields)
            .await
            .expect("create request");
        (saved.id, key)
    }

    /// Edits a record as the bureau's analyst (or `as_user`) through the simulator's control surface.
    pub async fn bureau_edit(&self, id: &str, fields: Value, as_user: Option<&str>) {
        let mut body = json!({ "fields": fields });
        if let Some(user) = as_user {
            body["as_user"] = user.into();
        }
        let resp = sim_support::client()
            .patch(format!(
                "{}/__sim/records/Credit_Report_Request__c/{id}",
                self.sim.base_url()
            ))
            .json(&body)
            .send()
            .await
            .expect("sim edit");
        assert!(resp.status().is_success(), "sim edit: {}", resp.status());
    }

    /// Attaches a PDF to the record (a REST ContentVersion upload with `FirstPublishLocationId`).
    pub async fn attach_pdf(&self, id: &str, pdf: &[u8]) {
        self.client
            .upload_content_version(ContentUpload {
                title: "Credit report".into(),
                path_on_client: "report.pdf".into(),
                data: Bytes::copy_from_slice(pdf),
                first_publish_location_id: Some(id.into()),
                multipart: false,
            })
            .await
            .expect("upload");
    }

    /// Posts raw bytes to the secret listener path (or `path` when given).
    pub async fn post(&self, path: Option<&str>, body: impl Into<reqwest::Body>) -> (u16, String) {
        let url = match path {
            Some(p) => format!("{}{p}", self.listener_url),
            None => format!(
                "{}/salesforce/outbound-messages/{SECRET}",
                self.listener_url
            ),
        };
        let resp = sim_support::client()
            .post(url)
            .header("content-type", "text/xml; charset=utf-8")
            .header("SOAPAction", "\"\"")
            .body(body)
            .send()
            .await
            .expect("post");
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("body"))
    }

    /// Steps the mirror until no hint is due; returns every outcome.
    pub async fn drain(&self) -> Vec<MirrorOutcome> {
        let mut outcomes = Vec::new();
        for _ in 0..100 {
            let step = self.inbound.mirror_step().await.expect("mirror step");
            if matches!(step.as_slice(), [MirrorOutcome::Idle { .. }]) {
                return outcomes;
            }
            outcomes.extend(step);
        }
        panic!("mirror did not go idle: {outcomes:?}");
    }

    /// Every queued message, oldest first.
    pub async fn messages(&self) -> Vec<Message> {
        self.outbox
            .list(&ListFilter {
                limit: 1000,
                ..ListFilter::default()
            })
            .await
            .expect("list")
    }

    /// Bank events only (no e-mails), oldest first.
    pub async fn bank_events(&self) -> Vec<Message> {
        self.messages()
            .await
            .into_iter()
            .filter(|m| matches!(m.destination, creditlink::outbox::Destination::Bank { .. }))
            .collect()
    }
}

/// A hand-built Outbound Messaging envelope with one notification per `(notification id, record id, status)`.
pub fn envelope(org_id: &str, notifications: &[(&str, &str, &str)]) -> String {
    let mut items = String::new();
    for (nid, rid, status) in notifications {
        items.push_str(&format!(
            r#"
   <Notification>
    <Id>{nid}</Id>
    <sObject xsi:type="sf:Credit_Report_Request__c" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>{rid}</sf:Id>
     <sf:Status__c>{status}</sf:Status__c>
    </sObject>
   </Notification>"#
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org_id}</OrganizationId>
   <ActionId>04k5Y0000008Q1hQAE</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://bureau.my.salesforce.com/services/Soap/c/62.0/00D5Y000001CLNK</EnterpriseUrl>
   <PartnerUrl>https://bureau.my.salesforce.com/services/Soap/u/62.0/00D5Y000001CLNK</PartnerUrl>{items}
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#
    )
}

/// A small valid-looking PDF with a marker that can be searched for on disk.
pub fn pdf_with_marker(marker: &str) -> Vec<u8> {
    format!(
        "%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% {marker}\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    )
    .into_bytes()
}

/// Whether any file under `dir` contains `needle`.
pub fn any_file_contains(dir: &Path, needle: &[u8]) -> Option<PathBuf> {
    let entries = std::fs::read_dir(dir).ok()?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = any_file_contains(&path, needle) {
                return Some(found);
            }
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            return Some(path);
        }
    }
    None
}
