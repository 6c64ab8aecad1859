//! `com.atproto.repo.*`: writing and reading records, with lexicon validation of known
//! collections.

use atmls_repo::{Cid, CommitOutcome, Repo, RepoPath, SqliteBlockStore, Write};
use atmls_syntax::{Nsid, RecordKey};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use crate::accounts::{Account, Caller};
use crate::error::HostError;
use crate::host::Host;

/// Largest `limit` of `listRecords`.
pub const MAX_LIST_LIMIT: usize = 100;

/// `createRecord` input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CreateRecordInput {
    /// The repo (DID or handle).
    pub repo: String,
    /// The collection NSID.
    pub collection: String,
    /// The record key; a fresh TID if absent.
    pub rkey: Option<String>,
    /// `true`: require a known lexicon; `false`: skip validation; absent: validate known
    /// collections only.
    pub validate: Option<bool>,
    /// The record.
    pub record: Value,
    /// The commit the repo must be at.
    pub swap_commit: Option<String>,
}

/// `putRecord` input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PutRecordInput {
    /// The repo (DID or handle).
    pub repo: String,
    /// The collection NSID.
    pub collection: String,
    /// The record key.
    pub rkey: String,
    /// As in [`CreateRecordInput::validate`].
    pub validate: Option<bool>,
    /// The record.
    pub record: Value,
    /// Absent: no check; `null`: the record must not exist; a CID: the record's current CID.
    #[serde(default, deserialize_with = "present")]
    pub swap_record: Option<Option<String>>,
    /// The commit the repo must be at.
    pub swap_commit: Option<String>,
}

/// `deleteRecord` input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DeleteRecordInput {
    /// The repo (DID or handle).
    pub repo: String,
    /// The collection NSID.
    pub collection: String,
    /// The record key.
    pub rkey: String,
    /// The record's current CID.
    pub swap_record: Option<String>,
    /// The commit the repo must be at.
    pub swap_commit: Option<String>,
}

/// `applyWrites` input.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ApplyWritesInput {
    /// The repo (DID or handle).
    pub repo: String,
    /// As in [`CreateRecordInput::validate`], for every write.
    pub validate: Option<bool>,
    /// The writes, applied in one commit.
    pub writes: Vec<WriteOp>,
    /// The commit the repo must be at.
    pub swap_commit: Option<String>,
}

/// One write of `applyWrites`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "$type")]
#[non_exhaustive]
pub enum WriteOp {
    /// Create a record.
    #[serde(rename = "com.atproto.repo.applyWrites#create")]
    Create {
        /// The collection.
        collection: String,
        /// The record key (a fresh TID if absent).
        rkey: Option<String>,
        /// The record.
        value: Value,
    },
    /// Replace a record.
    #[serde(rename = "com.atproto.repo.applyWrites#update")]
    Update {
        /// The collection.
        collection: String,
        /// The record key.
        rkey: String,
        /// The record.
        value: Value,
    },
    /// Delete a record.
    #[serde(rename = "com.atproto.repo.applyWrites#delete")]
    Delete {
        /// The collection.
        collection: String,
        /// The record key.
        rkey: String,
    },
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A commit's CID and rev.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CommitMeta {
    /// The commit CID.
    pub cid: String,
    /// Its revision (a TID).
    pub rev: String,
}

impl From<&CommitOutcome> for CommitMeta {
    fn from(o: &CommitOutcome) -> Self {
        CommitMeta {
            cid: o.cid.to_string(),
            rev: o.rev.to_string(),
        }
    }
}

/// The output of `createRecord` and `putRecord`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RecordWritten {
    /// `at://did/collection/rkey`.
    pub uri: String,
    /// The record's CID.
    pub cid: String,
    /// The commit.
    pub commit: CommitMeta,
    /// `valid` (known lexicon) or `unknown` (none); absent when validation was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation_status: Option<String>,
}

/// A record as read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RecordView {
    /// `at://did/collection/rkey`.
    pub uri: String,
    /// The record's CID.
    pub cid: String,
    /// The record in its JSON form.
    pub value: Value,
}

/// The output of `listRecords`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RecordPage {
    /// Where the next page starts, when this one is full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// The records.
    pub records: Vec<RecordView>,
}

/// Parameters of `listRecords`.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ListParams {
    /// At most this many records (1 to 100; default 50).
    pub limit: Option<i64>,
    /// The last record key of the previous page.
    pub cursor: Option<String>,
    /// `false` (default): newest record key first, as the official PDS; `true`: oldest first.
    pub reverse: bool,
}

impl ListParams {
    /// Default parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the limit.
    pub fn with_limit(mut self, limit: i64) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Sets the cursor.
    pub fn with_cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// Sets the order.
    pub fn with_reverse(mut self, reverse: bool) -> Self {
        self.reverse = reverse;
        self
    }
}

pub(crate) fn parse_cid(s: &str, what: &str) -> Result<Cid, HostError> {
    atmls_repo::cid::parse(s).map_err(|e| HostError::InvalidRequest(format!("invalid {what}: {e}")))
}

fn parse_collection(s: &str) -> Result<Nsid, HostError> {
    Nsid::new(s).map_err(|e| HostError::InvalidRequest(format!("invalid collection: {e}")))
}

fn repo_path(collection: &Nsid, rkey: &str) -> Result<RepoPath, HostError> {
    RecordKey::new(rkey)
        .map_err(|e| HostError::InvalidRequest(format!("invalid record key: {e}")))?;
    RepoPath::parse(&format!("{collection}/{rkey}"))
        .map_err(|e| HostError::InvalidRequest(format!("invalid record path: {e}")))
}

/// The repo path of a collection and record key given as strings.
pub(crate) fn repo_path_of(collection: &str, rkey: &str) -> Result<RepoPath, HostError> {
    repo_path(&parse_collection(collection)?, rkey)
}

fn at_uri(did: &str, path: &RepoPath) -> String {
    format!("at://{did}/{path}")
}

/// A write checked and encoded, waiting for the repo lock.
struct Prepared {
    path: RepoPath,
    record: Option<atmls_repo::Ipld>,
    status: Option<&'static str>,
}

impl Host {
    /// Checks a record against its collection: `$type` (set if missing), the lexicon of a
    /// known collection and its record-key type, the data model. Returns the encoded
    /// record and its validation status.
    fn prepare_record(
        &self,
        collection: &Nsid,
        rkey: &str,
        mut record: Value,
        validate: Option<bool>,
    ) -> Result<Prepared, HostError> {
        let path = repo_path(collection, rkey)?;
        let Some(obj) = record.as_object_mut() else {
            return Err(HostError::InvalidRecord(
                "a record must be an object".into(),
            ));
        };
        match obj.get("$type") {
            None => {
                obj.insert("$type".into(), Value::String(collection.to_string()));
            }
            Some(Value::String(t)) if t == collection.as_str() => {}
            Some(other) => {
                return Err(HostError::InvalidRecord(format!(
                    "$type {other} does not match the collection {collection}"
                )));
            }
        }
        let known = self
            .catalog
            .doc(collection)
            .is_some_and(|d| matches!(d.main(), Some(atmls_lexicon::schema::Def::Record(_))));
        let status = match (validate, known) {
            (Some(false), _) => None,
            (Some(true), false) => {
                return Err(HostError::InvalidRecord(format!(
                    "lexicon not found: {collection}"
                )));
            }
            (None, false) => Some("unknown"),
            (_, true) => {
                self.catalog
                    .validate_record(collection, &record)
                    .map_err(|e| HostError::InvalidRecord(e.to_string()))?;
                let key =
                    RecordKey::new(rkey).map_err(|e| HostError::InvalidRequest(e.to_string()))?;
                self.catalog
                    .validate_record_key(collection, &key)
                    .map_err(|e| HostError::InvalidRecord(e.to_string()))?;
                Some("valid")
            }
        };
        let ipld = atmls_repo::json::record_to_ipld(&record)
            .map_err(|e| HostError::InvalidRecord(e.to_string()))?;
        Ok(Prepared {
            path,
            record: Some(ipld),
            status,
        })
    }

    /// Resolves a repo identifier (DID or handle) to a local account.
    pub fn resolve_repo(&self, repo: &str) -> Result<Account, HostError> {
        if repo.contains('@') {
            return Err(HostError::InvalidRequest(format!("invalid repo: {repo}")));
        }
        match self.account_by_identifier(repo) {
            Err(HostError::AccountNotFound(r)) => Err(HostError::RepoNotFound(r)),
            other => other,
        }
    }

    /// Runs `build` on the caller's own repo under its write lock and commits the writes
    /// it returns (nothing when it returns none).
    fn write_repo<T>(
        &self,
        caller: &Caller,
        repo: &str,
        swap_commit: Option<&str>,
        build: impl FnOnce(&Repo<'_, SqliteBlockStore>) -> Result<(Vec<Write>, T), HostError>,
    ) -> Result<(Option<CommitOutcome>, T), HostError> {
        let account = self.resolve_repo(repo)?;
        if account.did != caller.did {
            return Err(HostError::Forbidden(
                "a session may only write its own repo".into(),
            ));
        }
        if !account.is_active() {
            return Err(HostError::AccountDeactivated(account.did));
        }
        let swap_commit = swap_commit
            .map(|s| parse_cid(s, "swapCommit"))
            .transpose()?;
        let lock = self.repo_lock(&account.did);
        let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        let key = self.signing_key(&account.did)?;
        let did = account.did.parse().map_err(HostError::internal)?;
        let mut repo = Repo::open(&self.blocks, did, key)?;
        let (writes, extra) = build(&repo)?;
        if writes.is_empty() {
            if let Some(expected) = swap_commit
                && expected != repo.head().commit
            {
                return Err(HostError::InvalidSwap(format!(
                    "swapCommit {expected} is not the current commit {}",
                    repo.head().commit
                )));
            }
            return Ok((None, extra));
        }
        let outcome = repo.apply_writes(writes, swap_commit)?;
        Ok((Some(outcome), extra))
    }

    /// `createRecord`.
    pub fn create_record(
        &self,
        caller: &Caller,
        input: CreateRecordInput,
    ) -> Result<RecordWritten, HostError> {
        let collection = parse_collection(&input.collection)?;
        let rkey = input.rkey.clone().unwrap_or_else(|| self.next_tid());
        let prepared = self.prepare_record(&collection, &rkey, input.record, input.validate)?;
        let path = prepared.path.clone();
        let record = prepared.record.unwrap_or(atmls_repo::Ipld::Null);
        let (outcome, ()) =
            self.write_repo(caller, &input.repo, input.swap_commit.as_deref(), |_| {
                Ok((vec![Write::create(path.clone(), record)], ()))
            })?;
        written(&caller.did, outcome, prepared.status)
    }

    /// `putRecord`: creates or replaces a record.
    pub fn put_record(
        &self,
        caller: &Caller,
        input: PutRecordInput,
    ) -> Result<RecordWritten, HostError> {
        let collection = parse_collection(&input.collection)?;
        let prepared =
            self.prepare_record(&collection, &input.rkey, input.record, input.validate)?;
        let swap = match &input.swap_record {
            None => None,
            Some(None) => Some(None),
            Some(Some(s)) => Some(Some(parse_cid(s, "swapRecord")?)),
        };
        let path = prepared.path.clone();
        let record = prepared.record.unwrap_or(atmls_repo::Ipld::Null);
        let (outcome, ()) =
            self.write_repo(caller, &input.repo, input.swap_commit.as_deref(), |repo| {
                let current = repo.record_cid(&path)?;
                if let Some(expected) = swap
                    && expected != current
                {
                    return Err(swap_error(&path, expected, current));
                }
                let write = match current {
                    None => Write::create(path.clone(), record),
                    Some(_) => Write::update(path.clone(), record),
                };
                Ok((vec![write], ()))
            })?;
        written(&caller.did, outcome, prepared.status)
    }

    /// `deleteRecord`: deleting a record that does not exist succeeds without a commit,
    /// as on the official PDS.
    pub fn delete_record(
        &self,
        caller: &Caller,
        input: DeleteRecordInput,
    ) -> Result<Option<CommitMeta>, HostError> {
        let collection = parse_collection(&input.collection)?;
        let path = repo_path(&collection, &input.rkey)?;
        let swap = input
            .swap_record
            .as_deref()
            .map(|s| parse_cid(s, "swapRecord"))
            .transpose()?;
        let (outcome, ()) =
            self.write_repo(caller, &input.repo, input.swap_commit.as_deref(), |repo| {
                let current = repo.record_cid(&path)?;
                if let Some(expected) = swap
                    && Some(expected) != current
                {
                    return Err(swap_error(&path, Some(expected), current));
                }
                Ok((
                    current
                        .map(|_| Write::delete(path.clone()))
                        .into_iter()
                        .collect(),
                    (),
                ))
            })?;
        Ok(outcome.as_ref().map(CommitMeta::from))
    }

    /// `applyWrites`: every write in one commit, or none.
    pub fn apply_writes(
        &self,
        caller: &Caller,
        input: ApplyWritesInput,
    ) -> Result<Value, HostError> {
        if input.writes.len() > 200 {
            return Err(HostError::InvalidRequest(
                "too many writes: at most 200".into(),
            ));
        }
        let mut writes = Vec::with_capacity(input.writes.len());
        let mut statuses = Vec::with_capacity(input.writes.len());
        for op in input.writes {
            let (write, status) = match op {
                WriteOp::Create {
                    collection,
                    rkey,
                    value,
                } => {
                    let c = parse_collection(&collection)?;
                    let rkey = rkey.unwrap_or_else(|| self.next_tid());
                    let p = self.prepare_record(&c, &rkey, value, input.validate)?;
                    let record = p.record.unwrap_or(atmls_repo::Ipld::Null);
                    (Write::create(p.path, record), p.status)
                }
                WriteOp::Update {
                    collection,
                    rkey,
                    value,
                } => {
                    let c = parse_collection(&collection)?;
                    let p = self.prepare_record(&c, &rkey, value, input.validate)?;
                    let record = p.record.unwrap_or(atmls_repo::Ipld::Null);
                    (Write::update(p.path, record), p.status)
                }
                WriteOp::Delete { collection, rkey } => {
                    let c = parse_collection(&collection)?;
                    (Write::delete(repo_path(&c, &rkey)?), None)
                }
            };
            writes.push(write);
            statuses.push(status);
        }
        let (outcome, ()) =
            self.write_repo(caller, &input.repo, input.swap_commit.as_deref(), |_| {
                Ok((writes, ()))
            })?;
        let Some(outcome) = outcome else {
            return Ok(json!({ "results": [] }));
        };
        let results: Vec<Value> = outcome
            .results
            .iter()
            .zip(statuses)
            .map(|(r, status)| {
                let uri = at_uri(&caller.did, &r.path);
                match (r.cid, r.prev) {
                    (Some(cid), prev) => {
                        let kind = if prev.is_some() {
                            "updateResult"
                        } else {
                            "createResult"
                        };
                        let mut v = json!({
                            "$type": format!("com.atproto.repo.applyWrites#{kind}"),
                            "uri": uri,
                            "cid": cid.to_string(),
                        });
                        if let Some(s) = status {
                            v["validationStatus"] = json!(s);
                        }
                        v
                    }
                    (None, _) => json!({ "$type": "com.atproto.repo.applyWrites#deleteResult" }),
                }
            })
            .collect();
        Ok(json!({ "commit": CommitMeta::from(&outcome), "results": results }))
    }

    /// Opens a local account's repo for reading (any caller).
    pub(crate) fn read_repo<T>(
        &self,
        repo: &str,
        read: impl FnOnce(&Account, &mut Repo<'_, SqliteBlockStore>) -> Result<T, HostError>,
    ) -> Result<T, HostError> {
        let account = self.resolve_repo(repo)?;
        if !account.is_active() {
            return Err(HostError::RepoDeactivated(account.did));
        }
        let key = self.signing_key(&account.did)?;
        let did = account.did.parse().map_err(HostError::internal)?;
        let mut r = Repo::open(&self.blocks, did, key)?;
        read(&account, &mut r)
    }

    /// `getRecord`: the record, optionally only if its CID is `cid`.
    pub fn record(
        &self,
        repo: &str,
        collection: &str,
        rkey: &str,
        cid: Option<&str>,
    ) -> Result<RecordView, HostError> {
        let collection = parse_collection(collection)?;
        let path = repo_path(&collection, rkey)?;
        let want = cid.map(|c| parse_cid(c, "cid")).transpose()?;
        self.read_repo(repo, |account, r| {
            let found = r
                .record(&path)?
                .filter(|(c, _)| want.is_none_or(|w| w == *c));
            let (cid, value) =
                found.ok_or_else(|| HostError::RecordNotFound(at_uri(&account.did, &path)))?;
            Ok(RecordView {
                uri: at_uri(&account.did, &path),
                cid: cid.to_string(),
                value: atmls_repo::json::from_ipld(&value).map_err(HostError::internal)?,
            })
        })
    }

    /// `listRecords`.
    pub fn list_records(
        &self,
        repo: &str,
        collection: &str,
        params: &ListParams,
    ) -> Result<RecordPage, HostError> {
        let collection = parse_collection(collection)?;
        let limit = params.limit.unwrap_or(50);
        if !(1..=MAX_LIST_LIMIT as i64).contains(&limit) {
            return Err(HostError::InvalidRequest(format!(
                "limit must be 1 to {MAX_LIST_LIMIT}"
            )));
        }
        let limit = limit as usize;
        let cursor = match &params.cursor {
            Some(c) => Some(
                RecordKey::new(c.as_str())
                    .map_err(|e| HostError::InvalidRequest(format!("invalid cursor: {e}")))?,
            ),
            None => None,
        };
        let coll = collection;
        self.read_repo(repo, |account, r| {
            let entries = if params.reverse {
                // Oldest first: the MST's own order, starting after the cursor.
                r.list_records(&coll, cursor.as_ref(), limit)?
            } else {
                // Newest first: everything before the cursor, from the end.
                let mut all = r.list_records(&coll, None, usize::MAX)?;
                if let Some(c) = &cursor {
                    all.retain(|(p, _)| p.rkey().as_str() < c.as_str());
                }
                all.into_iter().rev().take(limit).collect()
            };
            let full = entries.len() == limit;
            let mut records = Vec::with_capacity(entries.len());
            for (path, _) in &entries {
                if let Some((cid, value)) = r.record(path)? {
                    records.push(RecordView {
                        uri: at_uri(&account.did, path),
                        cid: cid.to_string(),
                        value: atmls_repo::json::from_ipld(&value).map_err(HostError::internal)?,
                    });
                }
            }
            let cursor = entries
                .last()
                .filter(|_| full)
                .map(|(p, _)| p.rkey().to_string());
            Ok(RecordPage { cursor, records })
        })
    }

    /// `describeRepo`.
    pub fn describe_repo(&self, repo: &str) -> Result<Value, HostError> {
        self.read_repo(repo, |account, r| {
            let mut collections: Vec<String> = Vec::new();
            // Walk the keys once: collections are contiguous in key order.
            let entries = atmls_repo::Mst::load(r.data())
                .entries(&self.blocks)
                .map_err(HostError::internal)?;
            for (key, _) in entries {
                let key = String::from_utf8_lossy(&key);
                let c = key.split('/').next().unwrap_or_default().to_owned();
                if collections.last() != Some(&c) {
                    collections.push(c);
                }
            }
            Ok(json!({
                "handle": account.handle,
                "did": account.did,
                "didDoc": self.did_document(&account.did).unwrap_or(Value::Null),
                "collections": collections,
                "handleIsCorrect": true,
            }))
        })
    }
}

fn swap_error(path: &RepoPath, expected: Option<Cid>, found: Option<Cid>) -> HostError {
    let show = |c: Option<Cid>| c.map_or("none".to_owned(), |c| c.to_string());
    HostError::InvalidSwap(format!(
        "record {path} is {}, not {}",
        show(found),
        show(expected)
    ))
}

fn written(
    did: &str,
    outcome: Option<CommitOutcome>,
    status: Option<&'static str>,
) -> Result<RecordWritten, HostError> {
    let outcome = outcome.ok_or_else(|| HostError::internal("write produced no commit"))?;
    let result = outcome
        .results
        .first()
        .ok_or_else(|| HostError::internal("commit has no result"))?;
    let cid = result
        .cid
        .ok_or_else(|| HostError::internal("write has no CID"))?;
    Ok(RecordWritten {
        uri: at_uri(did, &result.path),
        cid: cid.to_string(),
        commit: CommitMeta::from(&outcome),
        validation_status: status.map(str::to_owned),
    })
}
