//! The org's in-memory state: schema, records, blobs, and the write rules Salesforce enforces.
//!
//! Records are stored as JSON maps holding every field of the object (unset ones as `null`), keyed by their
//! canonical field names, one [`Table`] per object with its indexes (by id, by unique / External ID value, by
//! the standard datetimes), so look-ups and unique checks cost a map read, not a scan. Deleted records stay in place with `IsDeleted = true` so `queryAll` and
//! `ENTITY_IS_DELETED` work. Blob (`base64`) field values live in `blobs`; the record holds `null` and readers
//! render the relative download URL, as Salesforce does.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::error::RecordError;
use super::ids;
use super::journal::{ChangeKind, Journal};
use super::seed::{FieldSpec, FieldType, NameField, ObjectSpec, Seed};
use super::snapshot::Snapshot;
use super::standard;
use super::table::Table;

pub type Record = Map<String, Value>;

/// Decoded blob values of a write, by canonical field name.
pub(super) type Blobs = Vec<(String, Vec<u8>)>;

/// Salesforce's datetime wire format: milliseconds and a colon-less offset.
pub fn sf_datetime(t: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    use std::fmt::Write as _;
    if !(0..=9999).contains(&t.year()) {
        return t.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
    }
    // Every write stamps three fields: written directly rather than through a parsed format string.
    let mut out = String::with_capacity(28);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+0000",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.timestamp_subsec_millis().min(999)
    );
    out
}

/// One object's schema with its standard fields added.
#[derive(Debug, Clone)]
pub struct ObjectSchema {
    pub name: String,
    pub key_prefix: String,
    pub name_field: NameField,
    pub fields: Vec<FieldSpec>,
    /// Indexes into `fields` in the order of their names' bytes (a stored record's key order), so a new
    /// record's entries are laid out in one ordered pass (see [`Org::fill_new`]).
    by_name: Vec<(usize, Option<SystemValue>)>,
}

/// The value the org itself gives a field of a new record, whatever the input says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SystemValue {
    /// The write's time: `CreatedDate`, `LastModifiedDate`, `SystemModstamp`.
    Stamp,
    /// The acting user: `CreatedById`, `LastModifiedById`.
    User,
    /// `IsDeleted = false`.
    Live,
    /// `Name`, when the object numbers its records.
    AutoName,
}

impl SystemValue {
    fn of(field: &str) -> Option<SystemValue> {
        match field {
            "CreatedDate" | "LastModifiedDate" | "SystemModstamp" => Some(SystemValue::Stamp),
            "CreatedById" | "LastModifiedById" => Some(SystemValue::User),
            "IsDeleted" => Some(SystemValue::Live),
            "Name" => Some(SystemValue::AutoName),
            _ => None,
        }
    }
}

impl ObjectSchema {
    /// Case-insensitive field lookup, as the API does.
    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// An empty table indexing this object's unique and External ID fields.
    fn new_table(&self) -> Table {
        Table::new(
            self.fields
                .iter()
                .filter(|f| f.unique || f.external_id)
                .map(|f| f.name.clone()),
        )
    }

    fn from_spec(spec: &ObjectSpec) -> Self {
        let std_field = |name: &str, kind: FieldType| FieldSpec {
            name: name.into(),
            kind,
            length: (kind == FieldType::Id).then_some(18),
            precision: None,
            scale: None,
            required: false,
            default: None,
            unique: false,
            external_id: false,
            createable: false,
            updateable: false,
            values: vec![],
            restricted: false,
            reference_to: matches!(kind, FieldType::Reference).then(|| "User".to_string()),
        };
        let mut fields = vec![std_field("Id", FieldType::Id)];
        match &spec.name_field {
            NameField::None => {}
            NameField::Text => fields.push(FieldSpec {
                length: Some(80),
                required: true,
                createable: true,
                updateable: true,
                ..std_field("Name", FieldType::String)
            }),
            NameField::AutoNumber(_) | NameField::Computed(_) => fields.push(FieldSpec {
                length: Some(255),
                ..std_field("Name", FieldType::String)
            }),
        }
        fields.extend(spec.fields.iter().cloned());
        for f in standard::common_fields(&spec.name) {
            if !fields.iter().any(|g| g.name.eq_ignore_ascii_case(&f.name)) {
                fields.push(f);
            }
        }
        for f in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
            fields.push(std_field(f, FieldType::Datetime));
        }
        for f in ["CreatedById", "LastModifiedById"] {
            fields.push(std_field(f, FieldType::Reference));
        }
        fields.push(std_field("IsDeleted", FieldType::Boolean));
        let mut by_name: Vec<(usize, Option<SystemValue>)> = (0..fields.len())
            .map(|i| (i, SystemValue::of(&fields[i].name)))
            .collect();
        by_name.sort_by(|(a, _), (b, _)| fields[*a].name.cmp(&fields[*b].name));
        ObjectSchema {
            name: spec.name.clone(),
            key_prefix: spec.key_prefix.clone(),
            name_field: spec.name_field.clone(),
            fields,
            by_name,
        }
    }
}

/// The input fields of a write as [`Org::validate`] reads them, in the order of the map they would form: the
/// input's entries, without those named `skip` (case-insensitively), plus `extra` (a canonical name and its
/// value). An upsert's body is the input less its key field plus the key's value from the URL; reading it in
/// place spares a copy of every input record.
#[derive(Clone, Copy)]
pub(super) struct Fields<'a> {
    pub input: &'a Record,
    pub skip: Option<&'a str>,
    pub extra: Option<(&'a str, &'a Value)>,
}

impl<'a> Fields<'a> {
    pub fn all(input: &'a Record) -> Fields<'a> {
        Fields {
            input,
            skip: None,
            extra: None,
        }
    }

    /// The entries in key order, as the map `input - skip + extra` iterates them.
    pub fn iter(self) -> impl Iterator<Item = (&'a str, &'a Value)> {
        let mut rest = self
            .input
            .iter()
            .filter(move |(k, _)| self.skip.is_none_or(|s| !k.eq_ignore_ascii_case(s)))
            .map(|(k, v)| (k.as_str(), v))
            .peekable();
        let mut extra = self.extra;
        std::iter::from_fn(move || match (extra, rest.peek()) {
            (Some(e), Some((next, _))) if e.0 < *next => extra.take(),
            (Some(_), None) => extra.take(),
            _ => rest.next(),
        })
    }
}

/// The outcome of an upsert by external id.
#[derive(Debug)]
pub enum UpsertOutcome {
    Created(String),
    Updated(String),
    /// More than one record matches: their ids (answered with 300).
    Multiple(Vec<String>),
}

/// The whole org. Callers hold it behind one lock; every method is a complete, consistent operation.
#[derive(Debug, Clone)]
pub struct Org {
    /// Shared so a write can hold its object's schema while it changes the records.
    objects: Vec<Arc<ObjectSchema>>,
    /// One table per object, by canonical object name.
    records: HashMap<String, Table>,
    pub(super) blobs: HashMap<String, Vec<u8>>,
    seq: u64,
    autonumbers: HashMap<String, u64>,
    /// Applied writes for the automation worker (see `journal`).
    pub(super) journal: Journal,
    /// The last write time and its text: a batch's writes share one time, written once.
    last_stamp: Option<(DateTime<Utc>, String)>,
}

impl Org {
    /// Build the org a seed describes; seed records skip validation but get every standard field.
    pub fn from_seed(seed: &Seed, now: DateTime<Utc>) -> anyhow::Result<Org> {
        let objects: Vec<Arc<ObjectSchema>> = seed
            .objects
            .iter()
            .map(|spec| Arc::new(ObjectSchema::from_spec(spec)))
            .collect();
        let mut org = Org {
            records: objects
                .iter()
                .map(|o| (o.name.clone(), o.new_table()))
                .collect(),
            objects,
            blobs: HashMap::new(),
            seq: 0,
            autonumbers: HashMap::new(),
            journal: Journal::default(),
            last_stamp: None,
        };
        let creator = seed.users.first().map(|u| u.id.clone()).unwrap_or_default();
        let mut seeded: Vec<(String, Record)> = Vec::new();
        for u in &seed.users {
            let mut r = Record::new();
            r.insert("Id".into(), u.id.clone().into());
            r.insert("Username".into(), u.username.clone().into());
            r.insert("Email".into(), u.email.clone().into());
            r.insert("FirstName".into(), u.first_name.clone().into());
            r.insert("LastName".into(), u.last_name.clone().into());
            r.insert("AccountId".into(), u.account_id.clone().into());
            seeded.push(("User".into(), r));
        }
        for (object, recs) in &seed.records {
            seeded.extend(recs.iter().map(|r| (object.clone(), r.clone())));
        }
        for (object, mut r) in seeded {
            let schema = org
                .schema_arc(&object)
                .ok_or_else(|| anyhow::anyhow!("seed record of unknown object {object}"))?
                .clone();
            let id = match r.get("Id").and_then(Value::as_str) {
                Some(id) => ids::normalize(id)
                    .ok_or_else(|| anyhow::anyhow!("seed record with malformed id {id}"))?,
                None => org.next_id(&schema.key_prefix),
            };
            r.insert("Id".into(), id.clone().into());
            org.fill_new(&schema, &mut r, &creator, now);
            org.put(&schema.name, id, r);
        }
        Ok(org)
    }

    /// The org's data, for `SimOptions::snapshot`.
    pub fn to_snapshot(&self) -> Snapshot {
        let engine = &base64::engine::general_purpose::STANDARD;
        Snapshot {
            records: self
                .records
                .iter()
                .map(|(name, table)| (name.clone(), table.records().clone()))
                .collect(),
            blobs: self
                .blobs
                .iter()
                .map(|(k, v)| (k.clone(), base64::Engine::encode(engine, v)))
                .collect(),
            seq: self.seq,
            autonumbers: self.autonumbers.clone(),
        }
    }

    /// Replace the data with a snapshot's; objects the seed no longer has are dropped.
    pub fn restore(&mut self, snapshot: Snapshot) -> anyhow::Result<()> {
        let engine = &base64::engine::general_purpose::STANDARD;
        let mut blobs = HashMap::new();
        for (k, v) in snapshot.blobs {
            blobs.insert(k, base64::Engine::decode(engine, v)?);
        }
        for (object, recs) in snapshot.records {
            if let Some(schema) = self.schema(&object) {
                let mut table = schema.new_table();
                for (id, rec) in recs {
                    table.put(id, rec);
                }
                self.records.insert(schema.name.clone(), table);
            }
        }
        self.blobs = blobs;
        self.seq = snapshot.seq;
        self.autonumbers = snapshot.autonumbers;
        Ok(())
    }

    /// Canonical schema for a case-insensitive object name.
    pub fn schema(&self, object: &str) -> Option<&ObjectSchema> {
        self.schema_arc(object).map(|s| &**s)
    }

    fn schema_arc(&self, object: &str) -> Option<&Arc<ObjectSchema>> {
        self.objects
            .iter()
            .find(|o| o.name.eq_ignore_ascii_case(object))
    }

    /// The schema of a write, held while the write changes the org.
    fn write_schema(&self, object: &str) -> Result<Arc<ObjectSchema>, RecordError> {
        self.schema_arc(object)
            .cloned()
            .ok_or_else(|| RecordError::invalid_type(object))
    }

    pub fn schema_or_invalid(&self, object: &str) -> Result<&ObjectSchema, RecordError> {
        self.schema(object)
            .ok_or_else(|| RecordError::invalid_type(object))
    }

    pub fn objects(&self) -> &[Arc<ObjectSchema>] {
        &self.objects
    }

    /// Every stored record of an object, deleted ones included, in creation order of ids.
    pub fn all(&self, object: &str) -> impl Iterator<Item = &Record> {
        self.records
            .get(object)
            .into_iter()
            .flat_map(|t| t.iter().map(|(_, r)| r))
    }

    /// An object's table (canonical name), for the query planner.
    pub fn table(&self, object: &str) -> Option<&Table> {
        self.records.get(object)
    }

    /// A live record by id. Unknown → `NOT_FOUND`, deleted → `ENTITY_IS_DELETED`, bad id → `MALFORMED_ID`.
    pub fn get(&self, object: &str, id: &str) -> Result<&Record, RecordError> {
        let schema = self.schema_or_invalid(object)?;
        let id18 = ids::normalize(id).ok_or_else(|| RecordError::malformed_id(id))?;
        let rec = self
            .records
            .get(&schema.name)
            .and_then(|t| t.get(&id18))
            .ok_or_else(RecordError::not_found)?;
        if rec.get("IsDeleted") == Some(&Value::Bool(true)) {
            return Err(RecordError::deleted());
        }
        Ok(rec)
    }

    /// Whether the record with the 18-character `id18` of the object (canonical name) exists and is not
    /// deleted: what [`Org::get`] succeeds on, for an id already normalised.
    pub(super) fn is_live(&self, object: &str, id18: &str) -> bool {
        self.records
            .get(object)
            .and_then(|t| t.get(id18))
            .is_some_and(|r| r.get("IsDeleted") != Some(&Value::Bool(true)))
    }

    /// Live records whose external-id (or `Id`) field equals `value`, case-insensitively, in id order. An
    /// indexed field (every unique and External ID field) is a map read; any other field scans the object.
    pub fn find_by_field(&self, object: &str, field: &str, value: &str) -> Vec<String> {
        let Some(table) = self.records.get(object) else {
            return Vec::new();
        };
        let equal = |r: &Record| {
            r.get("IsDeleted") != Some(&Value::Bool(true))
                && r.get(field)
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.eq_ignore_ascii_case(value))
        };
        match table.find_unique(field, value) {
            Some(candidates) => candidates
                .into_iter()
                .filter(|id| table.get(id).is_some_and(equal))
                .map(str::to_owned)
                .collect(),
            None => table
                .iter()
                .filter(|(_, r)| equal(r))
                .map(|(id, _)| id.clone())
                .collect(),
        }
    }

    /// Insert a record after full validation; returns its id.
    pub fn create(
        &mut self,
        object: &str,
        input: &Record,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<String, RecordError> {
        let schema = self.write_schema(object)?;
        self.create_in(&schema, Fields::all(input), user, now, None)
    }

    /// `unmatched`: a unique field whose new value the caller has just looked up and found no live record
    /// holding (an upsert's key), so its uniqueness is not checked again.
    fn create_in(
        &mut self,
        schema: &ObjectSchema,
        input: Fields<'_>,
        user: &str,
        now: DateTime<Utc>,
        unmatched: Option<&str>,
    ) -> Result<String, RecordError> {
        let (mut rec, blobs) = self.validate(schema, input, None)?;
        let id = self.next_id(&schema.key_prefix);
        rec.insert("Id".into(), id.clone().into());
        self.fill_new(schema, &mut rec, user, now);
        let missing: Vec<String> = schema
            .fields
            .iter()
            .filter(|f| f.required && rec.get(&f.name).is_none_or(Value::is_null))
            .filter(|f| !(f.kind == FieldType::Base64 && blobs.iter().any(|(n, _)| n == &f.name)))
            .map(|f| f.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(RecordError::new(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", missing.join(", ")),
                missing,
            ));
        }
        self.check_unique(schema, &rec, &id, unmatched)?;
        for (field, bytes) in blobs {
            self.blobs.insert(blob_key(&id, &field), bytes);
        }
        self.put(&schema.name, id.clone(), rec);
        self.journal
            .record(&schema.name, &id, ChangeKind::Created, user);
        Ok(id)
    }

    /// Update a live record after validation.
    pub fn update(
        &mut self,
        object: &str,
        id: &str,
        input: &Record,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<String, RecordError> {
        let schema = self.write_schema(object)?;
        self.update_in(&schema, id, Fields::all(input), user, now)
    }

    fn update_in(
        &mut self,
        schema: &ObjectSchema,
        id: &str,
        input: Fields<'_>,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<String, RecordError> {
        let current = self.get(&schema.name, id)?.clone();
        let id18 = current
            .get("Id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let (changes, blobs) = self.validate(schema, input, Some(&current))?;
        let mut rec = current;
        for (k, v) in changes {
            rec.insert(k, v);
        }
        if let Some(f) = schema
            .fields
            .iter()
            .find(|f| f.required && rec.get(&f.name).is_none_or(Value::is_null))
        {
            return Err(RecordError::new(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", f.name),
                vec![f.name.clone()],
            ));
        }
        self.check_unique(schema, &rec, &id18, None)?;
        compute_name(schema, &mut rec);
        let stamp = Value::String(self.stamp(now));
        rec.insert("LastModifiedDate".into(), stamp.clone());
        rec.insert("SystemModstamp".into(), stamp);
        rec.insert("LastModifiedById".into(), user.into());
        for (field, bytes) in blobs {
            self.blobs.insert(blob_key(&id18, &field), bytes);
        }
        self.put(&schema.name, id18.clone(), rec);
        self.journal
            .record(&schema.name, &id18, ChangeKind::Updated, user);
        Ok(id18)
    }

    /// Soft-delete a live record.
    pub fn delete(
        &mut self,
        object: &str,
        id: &str,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<(), RecordError> {
        let schema_name = self.schema_or_invalid(object)?.name.clone();
        let id18 = self
            .get(&schema_name, id)?
            .get("Id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        self.change(&schema_name, &id18, |rec| {
            rec.insert("IsDeleted".into(), true.into());
            rec.insert("SystemModstamp".into(), sf_datetime(now).into());
            rec.insert("LastModifiedById".into(), user.into());
        });
        self.journal
            .record(&schema_name, &id18, ChangeKind::Deleted, user);
        Ok(())
    }

    /// Upsert by an external-id field (or `Id`). `input` must not repeat the key field with another value.
    pub fn upsert(
        &mut self,
        object: &str,
        field: &str,
        value: &str,
        input: &Record,
        user: &str,
        now: DateTime<Utc>,
    ) -> Result<UpsertOutcome, RecordError> {
        let schema = self.write_schema(object)?;
        let key = schema
            .field(field)
            .filter(|f| f.external_id || f.name == "Id")
            .ok_or_else(RecordError::not_found)?
            .name
            .as_str();
        // The body without its key field (the key's value is the one in the URL), read in place.
        let body = Fields {
            input,
            skip: Some(key),
            extra: None,
        };
        let matches = if key == "Id" {
            ids::normalize(value)
                .filter(|id| self.get(&schema.name, id).is_ok())
                .into_iter()
                .collect()
        } else {
            self.find_by_field(&schema.name, key, value)
        };
        match matches.as_slice() {
            [] => {
                let value = Value::String(value.to_owned());
                let body = Fields {
                    extra: (key != "Id").then_some((key, &value)),
                    ..body
                };
                // No live record holds the key's value (`matches` is empty): its unique check is done.
                self.create_in(&schema, body, user, now, Some(key))
                    .map(UpsertOutcome::Created)
            }
            [one] => self
                .update_in(&schema, one, body, user, now)
                .map(UpsertOutcome::Updated),
            _ => Ok(UpsertOutcome::Multiple(matches)),
        }
    }

    /// The record as the API shows it: blob fields become their relative download URL.
    pub fn render(&self, schema: &ObjectSchema, rec: &Record, version: &str) -> Record {
        let mut out = rec.clone();
        let id = rec.get("Id").and_then(Value::as_str).unwrap_or_default();
        self.render_blobs(schema, id, &mut out, version);
        out
    }

    /// In a record or a row projected from record `id`: every blob field it holds becomes the blob's relative
    /// download URL, when the blob exists.
    pub fn render_blobs(&self, schema: &ObjectSchema, id: &str, out: &mut Record, version: &str) {
        for f in schema.fields.iter().filter(|f| f.kind == FieldType::Base64) {
            if out.contains_key(&f.name) && self.blobs.contains_key(&blob_key(id, &f.name)) {
                let url = format!(
                    "/services/data/v{version}/sobjects/{}/{id}/{}",
                    schema.name, f.name
                );
                out.insert(f.name.clone(), url.into());
            }
        }
    }

    pub fn blob(&self, id: &str, field: &str) -> Option<&Vec<u8>> {
        self.blobs.get(&blob_key(id, field))
    }

    /// Set fields directly, bypassing createable/updateable (system-maintained fields such as `IsLatest`).
    pub(super) fn set_system(&mut self, object: &str, id: &str, fields: Record) {
        self.change(object, id, |rec| rec.extend(fields));
    }

    /// Store a record (canonical object name), re-indexing it.
    fn put(&mut self, object: &str, id: String, rec: Record) {
        if let Some(table) = self.records.get_mut(object) {
            table.put(id, rec);
        }
    }

    /// Change a stored record in place through its table, so the indexes follow.
    fn change(&mut self, object: &str, id: &str, edit: impl FnOnce(&mut Record)) {
        let Some(table) = self.records.get_mut(object) else {
            return;
        };
        if let Some(mut rec) = table.get(id).cloned() {
            edit(&mut rec);
            table.put(id.to_owned(), rec);
        }
    }

    /// `now` as the org writes it ([`sf_datetime`]), remembered for the next write at the same time.
    fn stamp(&mut self, now: DateTime<Utc>) -> String {
        match &self.last_stamp {
            Some((t, text)) if *t == now => text.clone(),
            _ => {
                let text = sf_datetime(now);
                self.last_stamp = Some((now, text.clone()));
                text
            }
        }
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        ids::generate(prefix, self.seq)
    }

    /// Fill the standard fields, defaults and `Name` of a record about to be inserted.
    fn fill_new(
        &mut self,
        schema: &ObjectSchema,
        rec: &mut Record,
        user: &str,
        now: DateTime<Utc>,
    ) {
        // The system fields (over any given value), then the default (or null) of every other field not given.
        // The map is rebuilt from its entries in key order: the given entries (already in order) merged with
        // the schema's fields in name order. One ordered pass and a bulk build instead of a search per field.
        let stamp = self.stamp(now);
        let auto_name = match &schema.name_field {
            NameField::AutoNumber(pattern) => {
                let n = match self.autonumbers.get_mut(&schema.name) {
                    Some(n) => n,
                    None => self.autonumbers.entry(schema.name.clone()).or_insert(0),
                };
                *n += 1;
                Some(auto_number(pattern, *n))
            }
            _ => None,
        };
        // Taken by the one `Name` entry (a `Cell`, so both closures below can read `system`).
        let auto_name = std::cell::Cell::new(auto_name.map(Value::String));
        let system = |sys: Option<SystemValue>| -> Option<Value> {
            match sys? {
                SystemValue::Stamp => Some(Value::String(stamp.clone())),
                SystemValue::User => Some(Value::String(user.to_owned())),
                SystemValue::Live => Some(Value::Bool(false)),
                SystemValue::AutoName => auto_name.take(),
            }
        };
        let given = std::mem::take(rec);
        let mut entries: Vec<(String, Value)> =
            Vec::with_capacity(schema.fields.len() + given.len());
        let mut fields = schema
            .by_name
            .iter()
            .map(|(i, sys)| (&schema.fields[*i], *sys))
            .peekable();
        // A field not given; a name the schema repeats (a seed field named like a standard one) is kept once.
        let absent = |entries: &mut Vec<(String, Value)>, f: &FieldSpec, sys| {
            if entries.last().is_none_or(|(last, _)| *last != f.name) {
                let value = system(sys).unwrap_or_else(|| f.default.clone().unwrap_or(Value::Null));
                entries.push((f.name.clone(), value));
            }
        };
        for (key, value) in given {
            while let Some((f, sys)) = fields.next_if(|(f, _)| f.name < key) {
                absent(&mut entries, f, sys);
            }
            // A given field of the schema: its system value is known; any other key (a seed's) is looked at.
            let mut known = None;
            while let Some((_, sys)) = fields.next_if(|(f, _)| f.name == key) {
                known = Some(sys);
            }
            let sys = known.unwrap_or_else(|| SystemValue::of(&key));
            let value = system(sys).unwrap_or(value);
            entries.push((key, value));
        }
        for (f, sys) in fields {
            absent(&mut entries, f, sys);
        }
        // Already in key order without repeats, which the bulk build checks in one pass.
        *rec = entries.into_iter().collect();
        compute_name(schema, rec);
    }

    fn check_unique(
        &self,
        schema: &ObjectSchema,
        rec: &Record,
        id: &str,
        unmatched: Option<&str>,
    ) -> Result<(), RecordError> {
        for f in schema
            .fields
            .iter()
            .filter(|f| f.unique && unmatched != Some(f.name.as_str()))
        {
            let Some(value) = rec.get(&f.name).and_then(Value::as_str) else {
                continue;
            };
            if let Some(other) = self
                .find_by_field(&schema.name, &f.name, value)
                .into_iter()
                .find(|o| o != id)
            {
                return Err(RecordError::new(
                    "DUPLICATE_VALUE",
                    format!(
                        "duplicate value found: {} duplicates value on record with id: {other}",
                        f.name
                    ),
                    vec![],
                ));
            }
        }
        Ok(())
    }
}

fn blob_key(id: &str, field: &str) -> String {
    format!("{id}/{field}")
}

fn auto_number(pattern: &str, n: u64) -> String {
    match (pattern.find('{'), pattern.find('}')) {
        (Some(a), Some(b)) if b > a => {
            let width = b - a - 1;
            format!("{}{:0width$}{}", &pattern[..a], n, &pattern[b + 1..])
        }
        _ => format!("{pattern}{n}"),
    }
}

fn compute_name(schema: &ObjectSchema, rec: &mut Record) {
    if let NameField::Computed(parts) = &schema.name_field {
        let name: Vec<&str> = parts
            .iter()
            .filter_map(|p| rec.get(p).and_then(Value::as_str))
            .collect();
        rec.insert("Name".into(), name.join(" ").into());
    }
}

#[cfg(test)]
mod tests {
    use super::super::validate::parse_datetime;
    use super::*;

    #[test]
    fn auto_number_pads() {
        assert_eq!(auto_number("CRR-{000000}", 42), "CRR-000042");
    }

    #[test]
    fn datetime_format() {
        let t = parse_datetime("2013-05-20T20:49:32Z").unwrap();
        assert_eq!(sf_datetime(t), "2013-05-20T20:49:32.000+0000");
        assert_eq!(parse_datetime("2013-05-20T20:49:32.000+0000"), Some(t));
    }
}
