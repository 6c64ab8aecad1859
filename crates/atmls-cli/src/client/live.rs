//! `atmls watch` (live, over the DS's subscription) and `atmls inbox` (once).

use std::collections::HashMap;

use atmls_client::{Error, Event, GroupId, content};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::error::CliError;
use super::{Session, hex};

/// `atmls inbox`: fetches what is waiting (invitations, commits, messages) once, prints
/// it and exits.
pub(crate) async fn inbox(mut s: Session) -> Result<Session, CliError> {
    let mut names = GroupNames::known(&s).await;
    let events = s.sync().await?;
    let mut lines = Vec::new();
    for e in &events {
        if let Some(line) = render(&mut s, &mut names, e).await {
            lines.push(line);
        }
    }
    if s.out.json {
        s.out.emit(
            json!({ "events": lines.iter().map(|(j, _)| j).collect::<Vec<_>>() }),
            String::new,
        );
    } else if lines.is_empty() {
        say!("nothing new");
    } else {
        for (_, text) in &lines {
            say!("{text}");
        }
    }
    Ok(s)
}

/// `atmls watch [GROUP] [--chat]`: prints events as they arrive (one JSON object per line
/// with `--json`) until interrupted; with `--chat`, sends each line read on standard input
/// to GROUP.
pub(crate) async fn watch(
    group: Option<String>,
    chat: bool,
    mut s: Session,
) -> Result<Session, CliError> {
    let only = match &group {
        Some(g) => Some(s.group(g).await?.id),
        None => None,
    };
    let mut events = s.device.events();
    let mut runner = tokio::spawn({
        let device = s.device.clone();
        async move { device.run().await }
    });
    let mut names = GroupNames::known(&s).await;
    let mut stdin = chat.then(stdin_lines);
    s.out.emit(
        json!({ "type": "watching", "group": only.as_ref().map(|g| hex(g.as_bytes())) }),
        || {
            if chat {
                "watching; type a line and press Enter to send it, Ctrl-C to stop".to_owned()
            } else {
                "watching; Ctrl-C to stop".to_owned()
            }
        },
    );
    let result = loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(e) => {
                    if only.as_ref().is_some_and(|g| event_group(&e) != Some(g)) {
                        continue;
                    }
                    if let Some((j, text)) = render(&mut s, &mut names, &e).await {
                        s.out.emit(j, || text);
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    s.out.emit(json!({ "type": "lagged", "missed": n }), || {
                        format!("warning: {n} events were not shown (the terminal fell behind)")
                    });
                }
                Err(RecvError::Closed) => break Ok(()),
            },
            line = next_line(&mut stdin) => match line {
                Some(text) if !text.trim().is_empty() => {
                    if let Some(g) = &only {
                        match s.device.send(g, content::text(text.trim())).await {
                            Ok(_) => {}
                            // Kept in the outbox: the live loop sends it when the DS is
                            // back, and it is shown then.
                            Err(Error::Queued { id, error }) => {
                                let name = names.of(&s, g).await;
                                let why = CliError::from(error);
                                s.out.emit(
                                    json!({ "type": "queued", "group": hex(g.as_bytes()),
                                            "groupName": name, "id": id, "text": text.trim(),
                                            "error": why.to_json() }),
                                    || format!("[{name}] queued, will send: {why}"),
                                );
                            }
                            Err(e) => {
                                let e = s.explain(e);
                                eprintln!("error: {e}");
                            }
                        }
                    }
                }
                Some(_) => {}
                None => stdin = None,
            },
            _ = tokio::signal::ctrl_c() => break Ok(()),
            finished = &mut runner => break Err(match finished {
                Ok(Err(e)) => s.explain(e),
                _ => CliError::new("WatchStopped", "the live connection stopped"),
            }),
        }
    };
    runner.abort();
    result.map(|()| s)
}

/// Lines of standard input, read on a thread of their own (blocking reads).
fn stdin_lines() -> tokio::sync::mpsc::Receiver<String> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { return };
            if tx.blocking_send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// The next line of standard input, or never if there is none to read.
async fn next_line(stdin: &mut Option<tokio::sync::mpsc::Receiver<String>>) -> Option<String> {
    match stdin {
        Some(lines) => lines.recv().await,
        None => std::future::pending().await,
    }
}

fn event_group(e: &Event) -> Option<&GroupId> {
    match e {
        Event::Joined { group, .. }
        | Event::GroupChanged { group, .. }
        | Event::Removed { group }
        | Event::LeaveRequested { group, .. }
        | Event::Unreachable { group, .. }
        | Event::Unsent { group, .. }
        | Event::SendFailed { group, .. }
        | Event::Broken { group, .. }
        | Event::Recovered { group } => Some(group),
        Event::Message(m) => Some(&m.group),
        Event::Rejected { group, .. } => group.as_ref(),
        _ => None,
    }
}

/// Group names seen so far (a removed device can no longer read its group's name).
#[derive(Default)]
struct GroupNames(HashMap<GroupId, String>);

impl GroupNames {
    /// The names of the groups the device is in now.
    async fn known(s: &Session) -> Self {
        let groups = s.device.groups().await.unwrap_or_default();
        Self(
            groups
                .into_iter()
                .map(|g| (g.id.clone(), g.name().to_owned()))
                .collect(),
        )
    }

    async fn of(&mut self, s: &Session, g: &GroupId) -> String {
        if let Some(n) = self.0.get(g) {
            return n.clone();
        }
        match s.device.group(g).await {
            Ok(info) => {
                self.0.insert(g.clone(), info.name().to_owned());
                info.name().to_owned()
            }
            Err(_) => g.to_string(),
        }
    }
}

/// An event as (JSON, text line).
async fn render(s: &mut Session, names: &mut GroupNames, e: &Event) -> Option<(Value, String)> {
    let gid = event_group(e).map(|g| hex(g.as_bytes()));
    let gname = match event_group(e) {
        Some(g) => names.of(s, g).await,
        None => String::new(),
    };
    Some(match e {
        Event::Message(m) => {
            let who = s.name_of(&m.sender).await;
            let text = m.text().unwrap_or("(content without text)").to_owned();
            (
                json!({ "type": "message", "group": gid, "groupName": gname, "sender": m.sender,
                        "senderHandle": who, "senderDevice": m.sender_device, "seq": m.seq,
                        "id": m.content.id, "text": m.text() }),
                format!("[{gname}] {who}: {text}"),
            )
        }
        Event::Joined { name, .. } => {
            names.0.insert(event_group(e)?.clone(), name.clone());
            (
                json!({ "type": "joined", "group": gid, "groupName": name }),
                format!("joined group {name:?} [{}]", event_group(e)?),
            )
        }
        Event::GroupChanged { epoch, by, .. } => {
            let who = s.name_of(by).await;
            (
                json!({ "type": "groupChanged", "group": gid, "groupName": gname, "epoch": epoch, "by": by }),
                format!("[{gname}] {who} moved the group to epoch {epoch}"),
            )
        }
        Event::Removed { .. } => (
            json!({ "type": "removed", "group": gid, "groupName": gname }),
            format!("[{gname}] you are no longer a member"),
        ),
        Event::LeaveRequested { did, .. } => {
            let who = s.name_of(did).await;
            (
                json!({ "type": "leaveRequested", "group": gid, "groupName": gname, "did": did }),
                format!("[{gname}] {who} asked to leave"),
            )
        }
        Event::Unreachable { error, .. } => (
            json!({ "type": "unreachable", "group": gid, "groupName": gname, "error": error.to_string() }),
            format!("[{gname}] warning: mailbox unreachable this time: {error}"),
        ),
        Event::Rejected { seq, reason, .. } => (
            json!({ "type": "rejected", "group": gid, "groupName": gname, "seq": seq, "reason": reason }),
            format!("[{gname}] warning: refused item {seq}: {reason}"),
        ),
        Event::Unsent {
            id,
            attempts,
            error,
            ..
        } => (
            json!({ "type": "unsent", "group": gid, "groupName": gname, "id": id,
                    "attempts": attempts, "error": error.to_string() }),
            format!("[{gname}] not sent yet (attempt {attempts}), will retry: {error}"),
        ),
        Event::SendFailed { id, reason, .. } => (
            json!({ "type": "sendFailed", "group": gid, "groupName": gname, "id": id,
                    "reason": reason.to_string() }),
            format!("[{gname}] warning: a message was not sent: {reason}"),
        ),
        Event::InboxUnreachable { error } => (
            json!({ "type": "inboxUnreachable", "error": error.to_string() }),
            format!("warning: inbox unreachable this time: {error}"),
        ),
        Event::WelcomeRefused { seq, violation } => (
            json!({ "type": "welcomeRefused", "seq": seq, "reason": violation.to_string() }),
            format!("warning: refused an invitation (inbox item {seq}): {violation}"),
        ),
        Event::InboxItemDeferred {
            seq,
            error,
            attempts,
        } => (
            json!({ "type": "inboxItemDeferred", "seq": seq, "attempts": attempts, "error": error.to_string() }),
            format!("warning: inbox item {seq} set aside (attempt {attempts}): {error}"),
        ),
        Event::Broken { reason, .. } => (
            json!({ "type": "broken", "group": gid, "groupName": gname, "reason": reason.as_str() }),
            format!(
                "[{gname}] warning: this device fell out of step ({reason}); asking to be re-added"
            ),
        ),
        Event::Recovered { .. } => (
            json!({ "type": "recovered", "group": gid, "groupName": gname }),
            format!("[{gname}] re-added: reading the group again"),
        ),
        Event::ReentryRefused { reason, .. } => (
            json!({ "type": "reentryRefused", "reason": reason.to_string() }),
            format!("warning: a re-entry request was refused: {reason}"),
        ),
        _ => return None,
    })
}
