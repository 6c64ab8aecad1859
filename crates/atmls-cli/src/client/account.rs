//! `atmls account create|login|show`.

use std::sync::Arc;

use atmls_client::transport::Pds as _;
use atmls_client::transport::http::{HttpPds, describe_server};
use atmls_client::{Device, Did, Storage};
use clap::Subcommand;
use serde_json::json;

use super::error::CliError;
use super::profile::{self, Profile, SessionFile};
use super::{Out, hex};

/// What to do with the profile's account.
#[derive(Debug, Subcommand)]
pub(crate) enum AccountCommand {
    /// Create an account on a PDS, and this profile's device (inbox, declaration,
    /// KeyPackages).
    #[command(after_help = "Examples:
  atmls --profile alice account create --pds http://127.0.0.1:2583 \\
      --handle alice.test --email alice@example.com --password 'correct horse'
  ATMLS_PASSWORD=… atmls account create --pds https://pds.example.com --handle me.example.com \\
      --email me@example.com --ds did:web:ds.example.com")]
    Create {
        #[command(flatten)]
        login: LoginArgs,
        /// The account's e-mail address.
        #[arg(long, env = "ATMLS_EMAIL")]
        email: String,
    },
    /// Log in to an existing account; makes this profile a new device of it unless the
    /// profile already holds one.
    #[command(after_help = "Examples:
  atmls --profile alice-phone account login --pds http://127.0.0.1:2583 \\
      --handle alice.test --password 'correct horse'")]
    Login {
        #[command(flatten)]
        login: LoginArgs,
    },
    /// Show the profile's account, device and inbox.
    #[command(after_help = "Example:\n  atmls --profile alice account show --json")]
    Show,
}

/// Where and who.
#[derive(Debug, clap::Args)]
pub(crate) struct LoginArgs {
    /// The PDS's base URL.
    #[arg(long, env = "ATMLS_PDS")]
    pds: String,
    /// The account's handle (or DID, for login).
    #[arg(long, env = "ATMLS_HANDLE")]
    handle: String,
    /// The account's password.
    #[arg(long, env = "ATMLS_PASSWORD", hide_env_values = true)]
    password: String,
    /// The delivery service for this device's inbox and new groups
    /// [default: the DS that the PDS's host serves (chat.mls.ds.describeServer)].
    #[arg(long, env = "ATMLS_DS")]
    ds: Option<String>,
    /// The PLC directory [default: the PDS URL on loopback (the embedded host's),
    /// else https://plc.directory].
    #[arg(long, env = "ATMLS_PLC")]
    plc: Option<String>,
    /// Create mailboxes through the PDS's `atproto-proxy` (the PDS mints the DS's token
    /// and sees each new mailbox's id) instead of calling the DS directly with a
    /// `getServiceAuth` token; the profile remembers it.
    #[arg(long, env = "ATMLS_DS_VIA_PDS")]
    ds_via_pds: bool,
}

pub(crate) async fn run(
    command: AccountCommand,
    profile: &Profile,
    out: &Out,
) -> Result<(), CliError> {
    match command {
        AccountCommand::Create { login, email } => {
            if profile.has_device() {
                return Err(exists(profile));
            }
            let plc = login
                .plc
                .clone()
                .unwrap_or_else(|| profile::default_plc(&login.pds));
            // A retry after a create that stopped half-way: the account exists and its
            // session was saved; go on from there instead of creating it again.
            if let Some(saved) = profile.saved_session()? {
                let handle = login.handle.trim_start_matches('@');
                if saved.handle != handle || saved.pds != login.pds.trim_end_matches('/') {
                    return Err(exists(profile));
                }
                let ds = match &login.ds {
                    Some(ds) => parse_ds(ds)?,
                    None => described_ds(&saved.pds).await?,
                };
                let pds = HttpPds::resume(
                    &saved.pds,
                    saved.did.clone(),
                    saved.access.clone(),
                    saved.refresh.clone(),
                    profile::resolver(&plc),
                );
                return start_device(profile, &login, plc, ds, pds, out, "created").await;
            }
            // Everything that can be checked is checked before anything is created.
            let ds = match &login.ds {
                Some(ds) => parse_ds(ds)?,
                None => described_ds(&login.pds).await?,
            };
            let pds = HttpPds::create_account(
                &login.pds,
                &login.handle,
                &email,
                &login.password,
                profile::resolver(&plc),
            )
            .await?;
            start_device(profile, &login, plc, ds, pds, out, "created").await
        }
        AccountCommand::Login { login } => {
            let plc = login
                .plc
                .clone()
                .unwrap_or_else(|| profile::default_plc(&login.pds));
            let pds = HttpPds::login(
                &login.pds,
                &login.handle,
                &login.password,
                profile::resolver(&plc),
            )
            .await?;
            // A profile whose device database was lost keeps the device's id: the device
            // is restored under it (§11.17).
            let restorable = profile
                .saved_session()?
                .is_some_and(|s| s.device_id.is_some() && s.did == pds.did());
            if profile.has_device() || restorable {
                let old = profile.session()?;
                if old.did != pds.did() {
                    return Err(exists(profile));
                }
                let (access, refresh) = pds.tokens().await;
                let session = SessionFile {
                    pds: pds.base().to_owned(),
                    // A --plc given now replaces the stored one; none keeps it.
                    plc: login.plc.clone().unwrap_or(old.plc.clone()),
                    ds_via_pds: login.ds_via_pds || old.ds_via_pds,
                    access,
                    refresh,
                    ..old
                };
                profile.save_session(&session)?;
                let (device, _) = profile.device().await?;
                return show(&device, &session, out, "logged in").await;
            }
            let ds = match &login.ds {
                Some(ds) => parse_ds(ds)?,
                None => described_ds(pds.base()).await?,
            };
            start_device(profile, &login, plc, ds, pds, out, "logged in").await
        }
        AccountCommand::Show => {
            let (device, session) = profile.device().await?;
            show(&device, &session, out, "account").await
        }
    }
}

fn exists(profile: &Profile) -> CliError {
    CliError::new(
        "ProfileExists",
        format!(
            "profile {} already holds a device of another account: pick another --profile",
            profile.name
        ),
    )
}

/// `--ds` as a DID.
fn parse_ds(ds: &str) -> Result<Did, CliError> {
    Did::new(ds).map_err(|e| CliError::new("BadDs", format!("{ds:?} is not a DID: {e}")))
}

/// Creates the profile's device for the new session and saves both.
async fn start_device(
    profile: &Profile,
    login: &LoginArgs,
    plc: String,
    ds: Did,
    pds: HttpPds,
    out: &Out,
    what: &str,
) -> Result<(), CliError> {
    let did = pds.did();
    let (access, refresh) = pds.tokens().await;
    let mut session = SessionFile {
        pds: pds.base().to_owned(),
        did,
        handle: login.handle.trim_start_matches('@').to_owned(),
        plc: plc.clone(),
        ds: ds.clone(),
        access,
        refresh,
        ds_via_pds: login.ds_via_pds,
        device_id: None,
        xwing: profile.xwing,
    };
    // Saved first: if creating the device fails half-way, `account create` (or `login`)
    // again goes on from here.
    profile.save_session(&session)?;
    let pds = Arc::new(pds);
    let transport = profile::ds_transport(&pds, profile::resolver(&plc), login.ds_via_pds);
    let key = super::passphrase::passphrase(&profile.name, true)?;
    let device = Device::create(
        Storage::File(&profile.device_path(), &key),
        pds,
        transport,
        ds,
        profile::config(session.policy(profile.xwing)),
    )
    .await;
    let device = match device {
        Ok(d) => d,
        Err(e) => {
            let _ = std::fs::remove_file(profile.device_path());
            let _ = std::fs::remove_file(atmls_client::at_rest::kdf_path(&profile.device_path()));
            return Err(e.into());
        }
    };
    session.device_id = Some(device.device_id().to_owned());
    profile.save_session(&session)?;
    profile.save_tokens(&device, &mut session).await?;
    show(&device, &session, out, what).await
}

/// The DS the PDS's host serves, from `chat.mls.ds.describeServer` at `pds` (asked
/// before any account exists, so that a missing DS stops `account create` before it
/// creates anything).
async fn described_ds(pds: &str) -> Result<Did, CliError> {
    let answer = describe_server(pds).await.map_err(|e| {
        CliError::new(
            "NoDeliveryService",
            format!(
                "no --ds given and {pds} does not describe a delivery service ({e}); pass --ds DID (e.g. --ds did:web:ds.example.com)"
            ),
        )
    })?;
    Did::new(answer.did.as_str()).map_err(|e| {
        CliError::new(
            "NoDeliveryService",
            format!("describeServer answered an unusable DID ({e}): pass --ds"),
        )
    })
}

async fn show(
    device: &super::profile::CliDevice,
    session: &SessionFile,
    out: &Out,
    what: &str,
) -> Result<(), CliError> {
    let (inbox_ds, inbox) = device.inbox().await;
    let groups = device.groups().await?;
    out.emit(
        json!({
            "handle": session.handle, "did": session.did, "pds": session.pds,
            "plc": session.plc, "ds": session.ds, "device": device.device_id(),
            "inbox": { "ds": inbox_ds, "mailbox": inbox.to_string() },
            "groups": groups.iter().map(|g| hex(g.id.as_bytes())).collect::<Vec<_>>(),
        }),
        || {
            format!(
                "{what}: {} ({})\n  PDS {}\n  device {} with inbox {} on {}\n  {} group(s)",
                session.handle,
                session.did,
                session.pds,
                device.device_id(),
                inbox,
                inbox_ds,
                groups.len()
            )
        },
    );
    Ok(())
}
