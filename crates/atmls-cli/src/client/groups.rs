//! `atmls group create|add|remove|leave|list|info|lifetime` and `atmls send`.

use std::time::{Duration, Instant};

use atmls_client::{Committed, Did, Error, Group, OutgoingState, content};
use clap::Subcommand;
use serde_json::{Value, json};

use super::error::CliError;
use super::{Session, hex};

/// Groups this device is a member of.
#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// Create a group (you are its admin), optionally adding accounts at once.
    #[command(after_help = "Examples:
  atmls --profile alice group create tea
  atmls --profile alice group create tea --with bob.test --with carol.test")]
    Create {
        /// The group's name.
        name: String,
        /// Accounts (handles or DIDs) to add, each with all of its devices.
        #[arg(long = "with", env = "ATMLS_WITH", value_delimiter = ',')]
        with: Vec<String>,
    },
    /// Add accounts (every device of each) after verifying their KeyPackages.
    #[command(after_help = "Example:\n  atmls --profile alice group add tea carol.test")]
    Add {
        /// The group: its name, or a prefix of its id.
        group: String,
        /// Handles or DIDs.
        #[arg(required = true)]
        accounts: Vec<String>,
    },
    /// Remove accounts (every device of each); admins only.
    #[command(after_help = "Example:\n  atmls --profile alice group remove tea carol.test")]
    Remove {
        /// The group: its name, or a prefix of its id.
        group: String,
        /// Handles or DIDs.
        #[arg(required = true)]
        accounts: Vec<String>,
    },
    /// Ask to leave the group (an admin commits it).
    #[command(after_help = "Example:\n  atmls --profile bob group leave tea")]
    Leave {
        /// The group: its name, or a prefix of its id.
        group: String,
    },
    /// List the groups of this device.
    #[command(after_help = "Example:\n  atmls --profile alice group list --json")]
    List,
    /// Set how long messages last (disappearing messages): every device deletes them,
    /// and the DS keeps them at most this long plus an hour; admins only.
    #[command(after_help = "Examples:
  atmls --profile alice group lifetime tea 1d
  atmls --profile alice group lifetime tea 90s
  atmls --profile alice group lifetime tea off")]
    Lifetime {
        /// The group: its name, or a prefix of its id.
        group: String,
        /// `off`, or a number with a unit: s, m, h or d (60 s to 365 d).
        lifetime: String,
    },
    /// Show a group: epoch, epoch authenticator, mailbox, admins, member devices.
    #[command(after_help = "Example:\n  atmls --profile alice group info tea")]
    Info {
        /// The group: its name, or a prefix of its id.
        group: String,
    },
}

pub(crate) async fn run(command: GroupCommand, mut s: Session) -> Result<Session, CliError> {
    s.sync().await?;
    match command {
        GroupCommand::Create { name, with } => {
            let dids = accounts(&mut s, &with).await?;
            // The suite is negotiated with every first device (docs/spec.md §11.19).
            let (id, committed) = s
                .device
                .create_group_with(&name, &dids)
                .await
                .map_err(|e| s.explain(e))?;
            let undelivered = match committed {
                Some(c) => accepted(&s, c)?,
                None => Vec::new(),
            };
            let g = s.device.group(&id).await?;
            let mut info = describe(&mut s, &g).await;
            let text = format!("created {}", human(&info));
            if let Some(map) = info.as_object_mut() {
                map.insert("undelivered".into(), Value::Array(undelivered));
            }
            s.out.emit(info, || text);
        }
        GroupCommand::Add { group, accounts } => {
            membership(&mut s, &group, &accounts, true).await?
        }
        GroupCommand::Remove { group, accounts } => {
            membership(&mut s, &group, &accounts, false).await?;
        }
        GroupCommand::Leave { group } => {
            let g = s.group(&group).await?;
            s.device.leave(&g.id).await.map_err(|e| s.explain(e))?;
            s.out.emit(json!({ "group": hex(g.id.as_bytes()), "leaveRequested": true }), || {
                format!(
                    "asked to leave {:?}; an admin commits it and you then see that you were removed",
                    g.name()
                )
            });
        }
        GroupCommand::List => {
            let groups = s.device.groups().await?;
            let mut list = Vec::new();
            for g in &groups {
                list.push(describe(&mut s, g).await);
            }
            s.out.emit(json!({ "groups": list }), || {
                if list.is_empty() {
                    return "no groups yet (`atmls group create NAME`, or wait for an invitation with `atmls inbox`)".to_owned();
                }
                list.iter().map(human).collect::<Vec<_>>().join("\n")
            });
        }
        GroupCommand::Lifetime { group, lifetime } => {
            let g = s.group(&group).await?;
            let lifetime = parse_lifetime(&lifetime)?;
            let c = s
                .device
                .set_message_lifetime(&g.id, lifetime)
                .await
                .map_err(|e| s.explain(e))?;
            let _ = accepted(&s, c)?;
            let g = s.device.group(&g.id).await?;
            let info = describe(&mut s, &g).await;
            s.out.emit(info.clone(), || {
                format!("messages last {} in {}", lifetime_text(&info), human(&info))
            });
        }
        GroupCommand::Info { group } => {
            let g = s.group(&group).await?;
            let info = describe(&mut s, &g).await;
            s.out.emit(info.clone(), || {
                let mut text = human(&info);
                text.push_str(&format!(
                    "\n  epoch authenticator {}\n  mailbox {} on {}\n  admins: {}\n  messages last: {}",
                    info["epochAuthenticator"].as_str().unwrap_or_default(),
                    info["mailbox"].as_str().unwrap_or_default(),
                    info["ds"].as_str().unwrap_or_default(),
                    join(&info["admins"]),
                    lifetime_text(&info),
                ));
                for m in info["members"].as_array().into_iter().flatten() {
                    text.push_str(&format!(
                        "\n  leaf {:>3}  {}  device {}",
                        m["leaf"],
                        m["handle"].as_str().unwrap_or_default(),
                        m["device"].as_str().unwrap_or("?")
                    ));
                }
                text
            });
        }
    }
    Ok(s)
}

/// `atmls send GROUP TEXT [--wait]`: the message goes to the device's outbox, then to
/// the DS at once when it can take it (after what earlier commands queued). When it
/// cannot (down, restarting), the command says "queued, will send" and succeeds: the next
/// `send`, `inbox` or `watch` of the profile sends it. With `wait`, it waits that long
/// for the DS instead, and fails with `NotSent` (the message stays queued).
pub(crate) async fn send(
    group: String,
    text: String,
    wait: Option<Duration>,
    s: Session,
) -> Result<Session, CliError> {
    s.sync().await?;
    let g = s.group(&group).await?;
    let (id, error) = match s.device.send(&g.id, content::text(text.clone())).await {
        Ok(sent) => {
            sent_line(&s, &g, &sent.id, &text);
            return Ok(s);
        }
        Err(Error::Queued { id, error }) => (id, error),
        Err(e) => return Err(s.explain(e)),
    };
    let Some(limit) = wait else {
        s.out.emit(
            json!({ "group": hex(g.id.as_bytes()), "id": id, "text": text, "queued": true,
                    "error": CliError::from(error.clone()).to_json() }),
            || {
                format!(
                    "queued, will send to {:?}: the service cannot take it now ({}); \
                     the next `atmls send`, `inbox` or `watch` of this profile sends it",
                    g.name(),
                    CliError::from(error.clone())
                )
            },
        );
        return Ok(s);
    };
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(250);
    loop {
        match s.device.outbox().await?.iter().find(|o| o.content.id == id) {
            None => {
                sent_line(&s, &g, &id, &text);
                return Ok(s);
            }
            Some(o) => {
                if let OutgoingState::Failed { reason } = &o.state {
                    return Err(CliError::new(
                        "SendFailed",
                        format!("the message was refused: {reason}"),
                    ));
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(CliError::new(
                "NotSent",
                format!(
                    "not sent within {} s ({}); it stays queued and the next `atmls send`, \
                     `inbox` or `watch` of this profile sends it",
                    limit.as_secs(),
                    CliError::from(error)
                ),
            ));
        }
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(Duration::from_secs(5));
        s.device.flush_outbox().await.map_err(|e| s.explain(e))?;
    }
}

fn sent_line(s: &Session, g: &Group, id: &str, text: &str) {
    s.out.emit(
        json!({ "group": hex(g.id.as_bytes()), "id": id, "text": text, "epoch": g.epoch,
                "queued": false }),
        || format!("sent to {:?} (epoch {})", g.name(), g.epoch),
    );
}

async fn accounts(s: &mut Session, who: &[String]) -> Result<Vec<Did>, CliError> {
    let mut dids = Vec::new();
    for w in who.iter().filter(|w| !w.is_empty()) {
        dids.push(s.account(w).await?);
    }
    Ok(dids)
}

/// The invitations of an accepted change that did not reach their devices, as `--json`
/// shows them (`did`, `reason`, `resent`: whether the device keeps resending it during
/// its syncs); each is also a warning on standard error.
fn accepted(s: &Session, c: Committed) -> Result<Vec<Value>, CliError> {
    match c {
        Committed::Accepted { undelivered, .. } => {
            let mut list = Vec::new();
            for u in &undelivered {
                if u.retried {
                    eprintln!(
                        "warning: a device of {} was added but its invitation was not \
                         delivered yet: {} (WelcomeUndelivered); it is resent at the next syncs",
                        u.did, u.reason
                    );
                } else {
                    eprintln!(
                        "warning: a device of {} was added but did not receive its invitation: \
                         {} (WelcomeUndelivered); remove and add the account again",
                        u.did, u.reason
                    );
                }
                list.push(
                    json!({ "did": u.did, "reason": u.reason.to_string(), "resent": u.retried }),
                );
            }
            Ok(list)
        }
        other => Err(s.explain(CliError::new(
            "NotApplied",
            format!("the change was not applied: {other:?}"),
        ))),
    }
}

/// Adds (`add`) or removes the accounts `who`, then shows the group.
async fn membership(
    s: &mut Session,
    group: &str,
    who: &[String],
    add: bool,
) -> Result<(), CliError> {
    let g = s.group(group).await?;
    let dids = accounts(s, who).await?;
    let c = if add {
        s.device.add_members(&g.id, &dids).await
    } else {
        s.device.remove_members(&g.id, &dids).await
    };
    let undelivered = accepted(s, c.map_err(|e| s.explain(e))?)?;
    let what = if add { "added" } else { "removed" };
    let g = s.device.group(&g.id).await?;
    let info = describe(s, &g).await;
    s.out.emit(
        json!({ what: who, "group": info, "undelivered": undelivered }),
        || format!("{what} {}: {}", who.join(", "), human(&info)),
    );
    Ok(())
}

/// A group as JSON.
async fn describe(s: &mut Session, g: &Group) -> Value {
    let mut members = Vec::new();
    for m in &g.members {
        members.push(json!({
            "did": m.did, "handle": s.name_of(&m.did).await,
            "device": m.device_id, "leaf": m.leaf,
        }));
    }
    let mut admins = Vec::new();
    for a in &g.data.admins {
        admins.push(Value::String(s.name_of(a).await));
    }
    json!({
        "id": hex(g.id.as_bytes()),
        "name": g.name(),
        "description": g.data.description,
        "epoch": g.epoch,
        "ciphersuite": g.ciphersuite,
        "suite": atmls_client::suite::describe_code(g.ciphersuite),
        "epochAuthenticator": hex(&g.epoch_authenticator),
        "ds": g.data.ds,
        "mailbox": atmls_ds::MailboxId::from_bytes(g.data.mailbox).to_string(),
        "admins": admins,
        "messageLifetimeSeconds": g.data.message_lifetime.map(|l| l.seconds()),
        "accounts": g.member_dids().len(),
        "members": members,
        "broken": g.broken.map(|r| r.as_str()),
    })
}

/// One line for a group.
fn human(info: &Value) -> String {
    let broken = info["broken"]
        .as_str()
        .map(|r| format!("  BROKEN ({r}): waiting to be re-added"))
        .unwrap_or_default();
    format!(
        "{:?} [{}]  {}  epoch {}  {} account(s), {} device(s){broken}",
        info["name"].as_str().unwrap_or_default(),
        &info["id"].as_str().unwrap_or_default()
            [..12.min(info["id"].as_str().unwrap_or_default().len())],
        info["suite"].as_str().unwrap_or_default(),
        info["epoch"],
        info["accounts"],
        info["members"].as_array().map_or(0, Vec::len),
    )
}

/// `off`, or a count with a unit (`90s`, `10m`, `12h`, `7d`); bounds are the client's.
fn parse_lifetime(text: &str) -> Result<Option<Duration>, CliError> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let bad = || {
        CliError::new(
            "BadLifetime",
            format!(
                "lifetime {text:?}: use `off` or a number with a unit s, m, h or d (e.g. 90s, 1d)"
            ),
        )
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = text.split_at(split);
    let n: u64 = n.parse().map_err(|_| bad())?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    Ok(Some(Duration::from_secs(
        n.checked_mul(unit).ok_or_else(bad)?,
    )))
}

/// The lifetime of a described group, for people.
fn lifetime_text(info: &Value) -> String {
    match info["messageLifetimeSeconds"].as_u64() {
        None => "forever (no lifetime)".to_owned(),
        Some(s) if s % 86_400 == 0 => format!("{} d", s / 86_400),
        Some(s) if s % 3600 == 0 => format!("{} h", s / 3600),
        Some(s) if s % 60 == 0 => format!("{} min", s / 60),
        Some(s) => format!("{s} s"),
    }
}

fn join(list: &Value) -> String {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod lifetime_tests {
    use super::*;

    #[test]
    fn lifetimes_parse_with_units() {
        let secs = |t: &str| parse_lifetime(t).ok().flatten().map(|d| d.as_secs());
        assert_eq!(secs("90s"), Some(90));
        assert_eq!(secs("10m"), Some(600));
        assert_eq!(secs("12h"), Some(43_200));
        assert_eq!(secs("7d"), Some(604_800));
        assert!(matches!(parse_lifetime("off"), Ok(None)));
        for bad in ["", "d", "10", "10w", "-1d", "1.5h", "99999999999999999999d"] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }
}
