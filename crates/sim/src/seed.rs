//! The simulator's seed: the org it starts from and returns to on `POST /__sim/reset`.
//!
//! A seed is one JSON document (`config/sim/default-seed.json` is the default, embedded in the binary):
//!
//! ```text
//! {
//!   "org_id": "00D…",                      18-char org id; tokens start with its first 15 chars
//!   "bureau_user": "analyst@bureau.sim",   who /__sim/ edits act as unless `as_user` says otherwise
//!   "objects": [ { "name": "Obj__c", "key_prefix": "a01",
//!                  "name_field": "text" | "none" | {"auto_number": "CRR-{000000}"} | {"computed": ["FirstName","LastName"]},
//!                  "fields": [ { "name", "type": string|textarea|email|boolean|int|double|currency|percent|
//!                                         date|datetime|picklist|reference|base64|id,
//!                                "length", "precision", "scale", "required", "default", "unique",
//!                                "external_id", "createable", "updateable", "values", "restricted",
//!                                "reference_to" } ] } ],
//!   "records": { "Obj__c": [ { "Id": "…", "Field": value, … } ] },
//!   "users": [ { "id", "username", "email", "first_name", "last_name", "account_id", "password"? } ],
//!   "connected_apps": [ { "name", "consumer_key", "consumer_secret",
//!                         "certificate"?: {"builtin": "sandbox"} | {"pem": "…"} | {"file": "path"},
//!                         "preauthorized_users": [username…], "run_as": username?, "bank_account_id"?,
//!                         "callback_urls": [url…]? } ]
//! }
//! ```
//!
//! Every object also gets the standard fields (`Id`, `Name` unless `name_field` is `none`, `CreatedDate`,
//! `LastModifiedDate`, `SystemModstamp`, `CreatedById`, `LastModifiedById`, `IsDeleted`); seed files list only
//! their own fields. `users` become `User` records. A `{"file": …}` certificate path is relative to the seed
//! file and read once at load time; `{"builtin": "sandbox"}` is the public sandbox certificate compiled in.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The public sandbox certificate that creditlink's demo connected app verifies JWT assertions with.
const SANDBOX_CERT_PEM: &str = include_str!("../../../config/sandbox/jwt_cert.pem");
const DEFAULT_SEED: &str = include_str!("../../../config/sim/default-seed.json");

/// A parsed, validated seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seed {
    pub org_id: String,
    /// Username that `/__sim/` record edits act as by default (the bureau's staff).
    pub bureau_user: String,
    pub objects: Vec<ObjectSpec>,
    #[serde(default)]
    pub records: std::collections::BTreeMap<String, Vec<Map<String, Value>>>,
    pub users: Vec<UserSpec>,
    pub connected_apps: Vec<ConnectedAppSpec>,
}

/// One object's schema as written in the seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ObjectSpec {
    pub name: String,
    pub key_prefix: String,
    #[serde(default = "NameField::default_text")]
    pub name_field: NameField,
    #[serde(default)]
    pub fields: Vec<FieldSpec>,
}

/// How an object's `Name` field behaves.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum NameField {
    /// No `Name` field at all (content objects).
    None,
    /// A required, writable text(80) name.
    Text,
    /// Read-only auto-number; `{000000}` is replaced by the zero-padded sequence.
    AutoNumber(String),
    /// Read-only, joined from other fields with a space (User, Contact).
    Computed(Vec<String>),
}

impl NameField {
    fn default_text() -> Self {
        NameField::Text
    }
}

/// Field types the simulator validates.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Id,
    String,
    Textarea,
    Email,
    Phone,
    Url,
    Boolean,
    Int,
    Double,
    Currency,
    Percent,
    Date,
    Datetime,
    Picklist,
    Reference,
    Base64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FieldSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(default)]
    pub length: Option<usize>,
    #[serde(default)]
    pub precision: Option<u32>,
    #[serde(default)]
    pub scale: Option<u32>,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<Value>,
    #[serde(default)]
    pub unique: bool,
    #[serde(default)]
    pub external_id: bool,
    #[serde(default = "yes")]
    pub createable: bool,
    #[serde(default = "yes")]
    pub updateable: bool,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub restricted: bool,
    #[serde(default)]
    pub reference_to: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Serialize, Deserialize)]
pub struct UserSpec {
    pub id: String,
    pub username: String,
    pub email: String,
    #[serde(default)]
    pub first_name: Option<String>,
    pub last_name: String,
    #[serde(default)]
    pub account_id: Option<String>,
    /// Password for the legacy password grant; users without one cannot use it.
    #[serde(default, skip_serializing)]
    pub password: Option<String>,
}

impl std::fmt::Debug for UserSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSpec")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub struct ConnectedAppSpec {
    pub name: String,
    pub consumer_key: String,
    pub consumer_secret: String,
    #[serde(default)]
    pub certificate: Option<CertificateSource>,
    #[serde(default)]
    pub preauthorized_users: Vec<String>,
    /// Run-as user of the client-credentials flow; without one the flow is refused.
    #[serde(default)]
    pub run_as: Option<String>,
    /// Set on a demo bank's app: the bank's Account, reported in the info file.
    #[serde(default)]
    pub bank_account_id: Option<String>,
    /// The app's callback URLs: the only `redirect_uri`s the authorize page (web server flow) accepts, compared
    /// exactly as Salesforce does.
    #[serde(default)]
    pub callback_urls: Vec<String>,
}

impl std::fmt::Debug for ConnectedAppSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectedAppSpec")
            .field("name", &self.name)
            .field("consumer_key", &self.consumer_key)
            .field("consumer_secret", &"***")
            .finish_non_exhaustive()
    }
}

/// Where a connected app's JWT-verification certificate (or public key) comes from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateSource {
    Builtin(String),
    Pem(String),
    File(std::path::PathBuf),
}

impl Seed {
    /// The demo org every sandbox and test starts from.
    pub fn default_org() -> Seed {
        // The embedded seed is part of the build; a broken one is a programming error caught by the tests.
        Self::parse(DEFAULT_SEED, None).expect("embedded default seed is valid")
    }

    /// Load a seed file; certificate files are resolved relative to it and read now.
    pub fn from_file(path: &Path) -> anyhow::Result<Seed> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading seed file {}", path.display()))?;
        Self::parse(&text, path.parent())
            .with_context(|| format!("invalid seed file {}", path.display()))
    }

    fn parse(text: &str, base: Option<&Path>) -> anyhow::Result<Seed> {
        let mut seed: Seed = serde_json::from_str(text)?;
        for app in &mut seed.connected_apps {
            if let Some(CertificateSource::File(p)) = &app.certificate {
                let full = base.map(|b| b.join(p)).unwrap_or_else(|| p.clone());
                let pem = std::fs::read_to_string(&full)
                    .with_context(|| format!("reading certificate {}", full.display()))?;
                app.certificate = Some(CertificateSource::Pem(pem));
            }
        }
        seed.validate()?;
        Ok(seed)
    }

    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.org_id.len() == 18, "org_id must have 18 characters");
        for obj in &self.objects {
            anyhow::ensure!(
                obj.key_prefix.len() == 3,
                "{}: key_prefix must have 3 characters",
                obj.name
            );
        }
        for app in &self.connected_apps {
            if let Some(CertificateSource::Builtin(name)) = &app.certificate {
                anyhow::ensure!(name == "sandbox", "unknown builtin certificate {name:?}");
            }
            for u in app.preauthorized_users.iter().chain(app.run_as.iter()) {
                anyhow::ensure!(
                    self.users.iter().any(|x| &x.username == u),
                    "connected app {}: unknown user {u}",
                    app.name
                );
            }
        }
        anyhow::ensure!(
            self.users.iter().any(|u| u.username == self.bureau_user),
            "bureau_user {} is not a user",
            self.bureau_user
        );
        Ok(())
    }
}

impl ConnectedAppSpec {
    /// The PEM text (certificate or public key) JWT assertions for this app are verified with.
    pub fn certificate_pem(&self) -> Option<&str> {
        match self.certificate.as_ref()? {
            CertificateSource::Builtin(_) => Some(SANDBOX_CERT_PEM),
            CertificateSource::Pem(p) => Some(p),
            // Resolved to `Pem` at load time.
            CertificateSource::File(_) => None,
        }
    }
}
