//! The client commands for a person at a terminal: `account`, `keys`, `group`, `send`,
//! `watch`, `inbox`. They work against any PDS and DS over HTTP; state lives in a profile
//! directory ([`profile`]). Every command takes `--json`, and fails with one sentence and
//! a typed name ([`error::CliError`]).

use std::collections::HashMap;

use atmls_client::transport::Pds as _;
use atmls_client::{Did, Group};
use clap::Args;
use serde_json::Value;

pub(crate) mod account;
pub(crate) mod error;
pub(crate) mod groups;
pub(crate) mod keys;
pub(crate) mod live;
pub(crate) mod passphrase;
pub(crate) mod profile;
pub(crate) mod settings;

use error::CliError;
use profile::{CliDevice, Profile, ProfileOpts, SessionFile};

/// `--json`, on every client command.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct JsonOpt {
    /// Print machine-readable JSON instead of text (errors too, on standard error).
    #[arg(long, global = true, env = "ATMLS_JSON")]
    json: bool,
}

/// `atmls account …`
#[derive(Debug, Args)]
pub(crate) struct AccountArgs {
    #[command(flatten)]
    opts: JsonOpt,
    #[command(subcommand)]
    command: account::AccountCommand,
}

/// `atmls profile …`
#[derive(Debug, Args)]
pub(crate) struct ProfileArgs {
    #[command(flatten)]
    opts: JsonOpt,
    #[command(subcommand)]
    command: settings::ProfileCommand,
}

/// `atmls keys …`
#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    #[command(flatten)]
    opts: JsonOpt,
    #[command(subcommand)]
    command: keys::KeysCommand,
}

/// `atmls group …`
#[derive(Debug, Args)]
pub(crate) struct GroupArgs {
    #[command(flatten)]
    opts: JsonOpt,
    #[command(subcommand)]
    command: groups::GroupCommand,
}

/// `atmls send GROUP TEXT…`
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    opts: JsonOpt,
    /// The group: its name, or a prefix of its id (see `atmls group list`).
    group: String,
    /// The message (several words are joined with spaces).
    #[arg(required = true, num_args = 1..)]
    text: Vec<String>,
    /// When the DS cannot take the message now, wait (up to `--wait-timeout`) until it
    /// is sent instead of leaving it queued; fails with `NotSent` if it is not.
    #[arg(long, env = "ATMLS_WAIT")]
    wait: bool,
    /// How long `--wait` waits, in seconds.
    #[arg(
        long,
        env = "ATMLS_WAIT_TIMEOUT",
        default_value_t = 60,
        value_name = "SECONDS"
    )]
    wait_timeout: u64,
}

/// `atmls watch [GROUP]`
#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    #[command(flatten)]
    opts: JsonOpt,
    /// Only show this group (name or id prefix); with `--chat`, the group lines are sent to.
    group: Option<String>,
    /// Send each line typed on standard input to GROUP while watching.
    #[arg(long, env = "ATMLS_CHAT", requires = "group")]
    chat: bool,
}

/// `atmls inbox`
#[derive(Debug, Args)]
pub(crate) struct InboxArgs {
    #[command(flatten)]
    opts: JsonOpt,
}

/// Which client command to run.
#[derive(Debug)]
pub(crate) enum ClientCommand {
    Account(AccountArgs),
    Profile(ProfileArgs),
    Keys(KeysArgs),
    Group(GroupArgs),
    Send(SendArgs),
    Watch(WatchArgs),
    Inbox(InboxArgs),
}

impl ClientCommand {
    fn json(&self) -> bool {
        match self {
            Self::Account(a) => a.opts.json,
            Self::Profile(a) => a.opts.json,
            Self::Keys(a) => a.opts.json,
            Self::Group(a) => a.opts.json,
            Self::Send(a) => a.opts.json,
            Self::Watch(a) => a.opts.json,
            Self::Inbox(a) => a.opts.json,
        }
    }
}

/// Runs a client command; prints its result (text or JSON) and, on failure, the error
/// (`error: sentence (Name)` or `{"error", "message"}` on standard error). Returns
/// whether it succeeded.
pub(crate) fn run(command: ClientCommand, profile: &ProfileOpts) -> bool {
    let json = command.json();
    let runtime = match crate::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e} (IoError)");
            return false;
        }
    };
    let out = Out { json };
    match runtime.block_on(dispatch(command, profile, &out)) {
        Ok(()) => true,
        Err(e) => {
            if json {
                eprintln!("{}", e.to_json());
            } else {
                eprintln!("error: {e}");
            }
            false
        }
    }
}

async fn dispatch(command: ClientCommand, p: &ProfileOpts, out: &Out) -> Result<(), CliError> {
    match command {
        ClientCommand::Account(a) => account::run(a.command, &Profile::open(p)?, out).await,
        ClientCommand::Profile(a) => settings::run(a.command, &Profile::open(p)?, out),
        ClientCommand::Keys(a) => with_session(p, out, |s| keys::run(a.command, s)).await,
        ClientCommand::Group(a) => with_session(p, out, |s| groups::run(a.command, s)).await,
        ClientCommand::Send(a) => {
            let text = a.text.join(" ");
            let wait = a
                .wait
                .then(|| std::time::Duration::from_secs(a.wait_timeout));
            with_session(p, out, |s| groups::send(a.group, text, wait, s)).await
        }
        ClientCommand::Watch(a) => with_session(p, out, |s| live::watch(a.group, a.chat, s)).await,
        ClientCommand::Inbox(_) => with_session(p, out, live::inbox).await,
    }
}

/// Opens the profile's device, brings it up to date, runs `f`, saves refreshed tokens.
async fn with_session<F, Fut>(opts: &ProfileOpts, out: &Out, f: F) -> Result<(), CliError>
where
    F: FnOnce(Session) -> Fut,
    Fut: Future<Output = Result<Session, CliError>>,
{
    let profile = Profile::open(opts)?;
    let (device, file) = profile.device().await?;
    let session = Session {
        device,
        file,
        out: out.clone(),
        names: HashMap::new(),
    };
    let mut session = f(session).await?;
    profile
        .save_tokens(&session.device, &mut session.file)
        .await
}

/// How results are printed.
#[derive(Debug, Clone)]
pub(crate) struct Out {
    json: bool,
}

impl Out {
    /// Prints `json` (one line) or the text `human` builds.
    pub(crate) fn emit(&self, json: Value, human: impl FnOnce() -> String) {
        use std::io::Write as _;
        if self.json {
            say!("{json}");
        } else {
            let text = human();
            if !text.is_empty() {
                say!("{text}");
            }
        }
        let _ = std::io::stdout().flush();
    }
}

/// An open device with its session, while a command runs.
pub(crate) struct Session {
    pub(crate) device: CliDevice,
    pub(crate) file: SessionFile,
    pub(crate) out: Out,
    /// DID → handle, for messages and errors.
    names: HashMap<String, String>,
}

impl Session {
    /// The DID of an account given as a handle (`bob.test`, `@bob.test`) or a DID.
    pub(crate) async fn account(&mut self, who: &str) -> Result<Did, CliError> {
        let who = who.trim_start_matches('@');
        if who.starts_with("did:") {
            let did = Did::new(who).map_err(|e| {
                CliError::new("BadAccount", format!("{who:?} is not a valid DID: {e}"))
            })?;
            // Resolved now, so that an unknown DID reads as such rather than as a
            // failure deeper down.
            return match self.device.pds().resolve(&did).await {
                Ok(_) => Ok(did),
                Err(e) => Err(CliError::new(
                    "UnknownAccount",
                    format!("{did} does not resolve to a DID document ({e})"),
                )),
            };
        }
        let answer = self
            .device
            .pds()
            .query("com.atproto.identity.resolveHandle", &[("handle", who)])
            .await
            .map_err(|e| match CliError::from(e) {
                e if e.name == "NetworkError" => e,
                _ => CliError::new("UnknownHandle", format!("no account has the handle {who}")),
            })?;
        let did = answer["did"]
            .as_str()
            .and_then(|d| Did::new(d).ok())
            .ok_or_else(|| {
                CliError::new("UnknownHandle", format!("{who} did not resolve to a DID"))
            })?;
        self.names.insert(did.to_string(), who.to_owned());
        Ok(did)
    }

    /// The handle of `did` (from its DID document), else the DID.
    pub(crate) async fn name_of(&mut self, did: &Did) -> String {
        if let Some(n) = self.names.get(did.as_str()) {
            return n.clone();
        }
        let name = if did == &self.file.did {
            self.file.handle.clone()
        } else {
            match self.device.pds().resolve(did).await {
                Ok(doc) => doc
                    .handle()
                    .map_or_else(|| did.to_string(), |h| h.to_string()),
                Err(_) => did.to_string(),
            }
        };
        self.names.insert(did.to_string(), name.clone());
        name
    }

    /// Rewrites the DIDs this command knows handles for in an error.
    pub(crate) fn explain(&self, e: impl Into<CliError>) -> CliError {
        let names: Vec<(String, String)> = self
            .names
            .iter()
            .map(|(d, h)| (d.clone(), h.clone()))
            .collect();
        e.into().with_names(&names)
    }

    /// The group named `reference` (exact name, or a prefix of its hex id).
    pub(crate) async fn group(&self, reference: &str) -> Result<Group, CliError> {
        let groups = self.device.groups().await.map_err(CliError::from)?;
        let by_name: Vec<&Group> = groups.iter().filter(|g| g.name() == reference).collect();
        let found: Vec<&Group> = if by_name.is_empty() {
            let prefix = reference.to_ascii_lowercase();
            groups
                .iter()
                .filter(|g| !prefix.is_empty() && hex(g.id.as_bytes()).starts_with(&prefix))
                .collect()
        } else {
            by_name
        };
        match found.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(CliError::new(
                "UnknownGroup",
                format!("this device is in no group named {reference:?} (see `atmls group list`)"),
            )),
            _ => Err(CliError::new(
                "AmbiguousGroup",
                format!(
                    "{} groups match {reference:?}: use a longer id prefix",
                    found.len()
                ),
            )),
        }
    }

    /// Syncs once (welcomes, commits, messages), returning what happened.
    pub(crate) async fn sync(&self) -> Result<Vec<atmls_client::Event>, CliError> {
        self.device.sync().await.map_err(|e| self.explain(e))
    }
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
