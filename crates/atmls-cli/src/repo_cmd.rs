//! `atmls repo …`: inspect repo CAR files and verify record proofs.

use std::path::{Path, PathBuf};

use atmls_identity::DidDocument;
use atmls_repo::car::{self, Car};
use atmls_repo::proof::{self, ProofError};
use atmls_repo::{Did, Mst, Nsid, RecordKey, RepoPath, json};
use clap::Subcommand;
use serde_json::{Value, json};

/// Repo subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum RepoCommand {
    /// Show a CAR file's root commit (DID, rev, MST root) and the records it holds.
    Inspect {
        /// A CAR file: a whole repo (getRepo) or a record proof (getRecord).
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Verify a record proof (getRecord CAR) against the `#atproto` key of a DID document.
    VerifyRecord {
        /// The proof CAR file.
        file: PathBuf,
        /// The repo owner's DID document (JSON).
        #[arg(long)]
        did_doc: PathBuf,
        /// The record's collection (NSID); guessed from the CAR if it holds one record.
        #[arg(long, requires = "rkey")]
        collection: Option<String>,
        /// The record key.
        #[arg(long, requires = "collection")]
        rkey: Option<String>,
    },
}

/// Why a repo command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RepoCmdError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid CAR file: {source}")]
    Car {
        path: PathBuf,
        source: Box<car::CarError>,
    },
    #[error("{path}: {source}")]
    Repo {
        path: PathBuf,
        source: Box<ProofError>,
    },
    #[error("{path} is not a usable DID document: {reason}")]
    DidDoc { path: PathBuf, reason: String },
    #[error("invalid record path: {0}")]
    Path(String),
    #[error("cannot tell which record to check ({0}); pass --collection and --rkey")]
    WhichRecord(String),
    #[error("proof does NOT verify for at://{did}/{path}: {source}")]
    Verify {
        did: String,
        path: RepoPath,
        source: Box<ProofError>,
    },
}

pub(crate) fn run(cmd: RepoCommand) -> Result<(), RepoCmdError> {
    match cmd {
        RepoCommand::Inspect { file, json } => inspect(&file, json),
        RepoCommand::VerifyRecord {
            file,
            did_doc,
            collection,
            rkey,
        } => verify_record(&file, &did_doc, collection.zip(rkey)),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, RepoCmdError> {
    std::fs::read(path).map_err(|source| RepoCmdError::Read {
        path: path.to_owned(),
        source,
    })
}

fn read_car(path: &Path) -> Result<Car, RepoCmdError> {
    car::read(&read_file(path)?).map_err(|source| RepoCmdError::Car {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

struct RecordRow {
    path: String,
    cid: String,
    value: Option<Value>,
}

/// The records of the CAR's commit that can be reached with its blocks.
fn records(car: &Car, data: atmls_repo::Cid) -> Result<(Vec<RecordRow>, usize), ProofError> {
    let (entries, missing) = Mst::load(data).reachable_entries(&car.blocks)?;
    let rows = entries
        .into_iter()
        .map(|(key, cid)| {
            let value = car.blocks.get(&cid).and_then(|bytes| {
                atmls_repo::cbor::decode_ipld(bytes)
                    .ok()
                    .and_then(|v| json::from_ipld(&v).ok())
            });
            RecordRow {
                path: String::from_utf8_lossy(&key).into_owned(),
                cid: cid.to_string(),
                value,
            }
        })
        .collect();
    Ok((rows, missing))
}

fn inspect(file: &Path, as_json: bool) -> Result<(), RepoCmdError> {
    let car = read_car(file)?;
    let wrap = |source| RepoCmdError::Repo {
        path: file.to_owned(),
        source: Box::new(source),
    };
    let (root, commit) = proof::root_commit(&car).map_err(wrap)?;
    let (rows, missing) = records(&car, commit.data()).map_err(wrap)?;
    let did = commit.did().to_string();
    if as_json {
        let records: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "uri": format!("at://{did}/{}", r.path),
                    "cid": r.cid,
                    "value": r.value,
                })
            })
            .collect();
        let out = json!({
            "root": root.to_string(),
            "commit": {
                "did": did,
                "version": atmls_repo::commit::VERSION,
                "rev": commit.rev().to_string(),
                "data": commit.data().to_string(),
                "prev": commit.prev().map(|c| c.to_string()),
            },
            "blocks": car.blocks.len(),
            "complete": missing == 0,
            "records": records,
        });
        say!(
            "{}",
            serde_json::to_string_pretty(&out).unwrap_or_else(|_| out.to_string())
        );
        return Ok(());
    }
    say!("root:    {root}");
    say!("did:     {did}");
    say!("rev:     {}", commit.rev());
    say!("data:    {} (MST root)", commit.data());
    say!("blocks:  {}", car.blocks.len());
    if missing > 0 {
        say!("partial: {missing} subtree(s) not in this CAR (e.g. a record proof)");
    }
    say!("records: {}", rows.len());
    for r in &rows {
        let value = match &r.value {
            Some(v) => v.to_string(),
            None => "(record block not in this CAR)".to_owned(),
        };
        say!("  at://{did}/{}  {}  {value}", r.path, r.cid);
    }
    Ok(())
}

fn did_doc_key(path: &Path) -> Result<(Did, atmls_crypto::PublicKey), RepoCmdError> {
    let bad = |reason: String| RepoCmdError::DidDoc {
        path: path.to_owned(),
        reason,
    };
    let doc = DidDocument::from_json(&read_file(path)?).map_err(|e| bad(e.to_string()))?;
    let key = doc.atproto_key().map_err(|e| bad(e.to_string()))?;
    Ok((doc.id, key))
}

fn verify_record(
    file: &Path,
    did_doc: &Path,
    which: Option<(String, String)>,
) -> Result<(), RepoCmdError> {
    let (did, key) = did_doc_key(did_doc)?;
    let car = read_car(file)?;
    let path = match which {
        Some((collection, rkey)) => {
            let collection =
                Nsid::new(collection).map_err(|e| RepoCmdError::Path(e.to_string()))?;
            let rkey = RecordKey::new(rkey).map_err(|e| RepoCmdError::Path(e.to_string()))?;
            RepoPath::new(collection, rkey)
        }
        None => guess_path(&car, file)?,
    };
    let fail = |source| RepoCmdError::Verify {
        did: did.to_string(),
        path: path.clone(),
        source: Box::new(source),
    };
    let proof = proof::verify_record_in_car(&car, &did, &key, &path).map_err(fail)?;
    let commit = proof.commit();
    match proof.record() {
        Some((cid, _)) => say!(
            "OK: at://{did}/{path} is present (record {cid}) in commit {} rev {}, signed by the #atproto key of {did}",
            proof.commit_cid(),
            commit.rev()
        ),
        None => say!(
            "OK: at://{did}/{path} is absent (proof of absence) in commit {} rev {}, signed by the #atproto key of {did}",
            proof.commit_cid(),
            commit.rev()
        ),
    }
    Ok(())
}

/// The one record whose block the CAR carries.
fn guess_path(car: &Car, file: &Path) -> Result<RepoPath, RepoCmdError> {
    let wrap = |source| RepoCmdError::Repo {
        path: file.to_owned(),
        source: Box::new(source),
    };
    let (_, commit) = proof::root_commit(car).map_err(wrap)?;
    let (rows, _) = records(car, commit.data()).map_err(wrap)?;
    let with_block: Vec<&RecordRow> = rows.iter().filter(|r| r.value.is_some()).collect();
    match with_block.as_slice() {
        [one] => RepoPath::parse(&one.path).map_err(|e| RepoCmdError::Path(e.to_string())),
        [] => Err(RepoCmdError::WhichRecord(
            "the CAR holds no record block, e.g. a proof of absence".into(),
        )),
        many => Err(RepoCmdError::WhichRecord(format!(
            "the CAR holds {} records",
            many.len()
        ))),
    }
}
