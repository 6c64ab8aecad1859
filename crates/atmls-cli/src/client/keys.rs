//! `atmls keys publish|list|rotate`.

use atmls_client::transport::Pds as _;
use clap::Subcommand;
use serde_json::{Value, json};

use super::error::CliError;
use super::{Session, hex};

const KEY_PACKAGE_COLLECTION: &str = "chat.mls.keyPackage";

/// KeyPackages: what others use to add this device to groups.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Publish the declaration (if missing) and top up this device's KeyPackages.
    #[command(after_help = "Example:\n  atmls --profile alice keys publish")]
    Publish,
    /// List an account's KeyPackage records and verify them against its repo
    /// (signed commit, Merkle proof, DID document key), as an inviter would.
    #[command(
        after_help = "Examples:\n  atmls --profile alice keys list bob.test\n  atmls --profile alice keys list --json   # this account's own records"
    )]
    List {
        /// Handle or DID [default: this profile's account].
        account: Option<String>,
    },
    /// Replace every KeyPackage this device published with fresh ones; with `--leaf`,
    /// also give this device new keys (and a new signature key) in every group.
    #[command(after_help = "Example:\n  atmls --profile alice keys rotate --leaf")]
    Rotate {
        /// Also commit a key update of this device's leaf in each group.
        #[arg(long, env = "ATMLS_ROTATE_LEAF")]
        leaf: bool,
    },
}

pub(crate) async fn run(command: KeysCommand, mut s: Session) -> Result<Session, CliError> {
    match command {
        KeysCommand::Publish => {
            s.device.publish_declaration().await?;
            s.device.replenish_key_packages().await?;
            let records = own_records(&s).await?;
            s.out.emit(json!({ "published": records }), || {
                format!(
                    "{} KeyPackage record(s) published for this account",
                    records.len()
                )
            });
        }
        KeysCommand::List { account } => {
            let did = match &account {
                Some(a) => s.account(a).await?,
                None => s.file.did.clone(),
            };
            let name = s.name_of(&did).await;
            let listed = s
                .device
                .pds()
                .list_records(&did, KEY_PACKAGE_COLLECTION)
                .await
                .map_err(|e| s.explain(e))?;
            let doc = s
                .device
                .pds()
                .resolve(&did)
                .await
                .map_err(|e| s.explain(e))?;
            let key = doc.atproto_key().map(|k| k.to_did_key()).ok();
            // Verification skips this device's own packages (it never adds itself).
            let verified = match s.device.all_key_packages_of(&did).await {
                Ok(v) => v,
                Err(atmls_client::Error::NoKeyPackage { .. }) => Vec::new(),
                Err(e) => return Err(s.explain(e)),
            };
            let records: Vec<Value> = listed
                .iter()
                .map(|r| {
                    let proof = verified.iter().find(|v| v.rkey == r.rkey);
                    let own = r.value["deviceId"].as_str() == Some(s.device.device_id());
                    json!({
                        "rkey": r.rkey,
                        "device": r.value["deviceId"],
                        "ciphersuite": r.value["ciphersuite"],
                        "lastResort": r.value["lastResort"],
                        "expiresAt": r.value["expiresAt"],
                        "thisDevice": own && did == s.file.did,
                        "verified": proof.map(|v| json!({ "rev": v.rev, "inbox": v.inbox.to_string() })),
                    })
                })
                .collect();
            s.out.emit(
                json!({ "account": did, "handle": name, "signingKey": key, "records": records }),
                || {
                    let mut text = format!(
                        "{name} ({did}): {} KeyPackage record(s); repo signing key {}",
                        records.len(),
                        key.as_deref().unwrap_or("(none)")
                    );
                    for r in &records {
                        let kind = if r["lastResort"] == true {
                            "last-resort"
                        } else {
                            "one-time"
                        };
                        let state = match &r["verified"] {
                            Value::Object(v) => {
                                format!("verified at rev {}", v["rev"].as_str().unwrap_or("?"))
                            }
                            _ if r["thisDevice"] == true => "this device".to_owned(),
                            _ => "listed".to_owned(),
                        };
                        text.push_str(&format!(
                            "\n  {}  device {}  {:<15}  {kind:<11}  expires {}  {state}",
                            r["rkey"].as_str().unwrap_or_default(),
                            r["device"].as_str().unwrap_or("?"),
                            r["ciphersuite"]
                                .as_u64()
                                .and_then(|c| u16::try_from(c).ok())
                                .map(atmls_client::suite::describe_code)
                                .unwrap_or_else(|| "?".into()),
                            r["expiresAt"].as_str().unwrap_or("?"),
                        ));
                    }
                    text
                },
            );
        }
        KeysCommand::Rotate { leaf } => {
            s.sync().await?;
            s.device.rotate_key_packages().await?;
            let mut updated = Vec::new();
            if leaf {
                for g in s.device.groups().await? {
                    s.device
                        .self_update(&g.id, true)
                        .await
                        .map_err(|e| s.explain(e))?;
                    updated.push(hex(g.id.as_bytes()));
                }
            }
            let records = own_records(&s).await?;
            s.out.emit(
                json!({ "published": records, "groupsUpdated": updated }),
                || {
                    format!(
                        "{} fresh KeyPackage record(s) published; old ones deleted{}",
                        records.len(),
                        if leaf {
                            format!("; new leaf keys in {} group(s)", updated.len())
                        } else {
                            String::new()
                        }
                    )
                },
            );
        }
    }
    Ok(s)
}

/// This device's records (rkeys) in the account's repo.
async fn own_records(s: &Session) -> Result<Vec<String>, CliError> {
    let listed = s
        .device
        .pds()
        .list_records(&s.file.did, KEY_PACKAGE_COLLECTION)
        .await?;
    Ok(listed
        .into_iter()
        .filter(|r| r.value["deviceId"].as_str() == Some(s.device.device_id()))
        .map(|r| r.rkey)
        .collect())
}
