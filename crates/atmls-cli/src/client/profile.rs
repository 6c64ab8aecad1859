//! A profile: one account's session and one device, in a directory of its own.
//!
//! `<profile dir>/<name>/session.json` holds the PDS URL, the DID and handle, the PLC
//! directory URL, the DS DID and the session's access and refresh JWTs (mode 0600);
//! `device.sqlite` is the device's database (MLS state, keys, groups), encrypted at rest
//! with a key derived from the profile's passphrase (`ATMLS_PASSPHRASE` or asked on the
//! terminal; salt and cost in `device.sqlite.kdf`). A profile is used
//! by one `atmls` process at a time (an advisory lock on `lock`): two processes working
//! on the same device state would overwrite each other's ratchets.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use atmls_client::transport::http::{HttpDs, HttpPds};
use atmls_client::{Device, DeviceConfig, Did};
use atmls_identity::DidResolver;
use atmls_identity::resolve::{HttpResolver, ResolverConfig};
use clap::Args;
use serde_json::{Value, json};

use super::error::CliError;

/// A device of this CLI.
pub(crate) type CliDevice = Device<Arc<HttpPds>, HttpDs>;

const SESSION_FILE: &str = "session.json";
const DEVICE_FILE: &str = "device.sqlite";
const LOCK_FILE: &str = "lock";

/// Which profile the client commands use (each option also an environment variable).
#[derive(Debug, Clone, Args)]
pub(crate) struct ProfileOpts {
    /// Which profile (account and device) to use; several live side by side.
    #[arg(long, global = true, env = "ATMLS_PROFILE", default_value = "default")]
    pub(crate) profile: String,
    /// Where profiles live [default: <data dir>/profiles, the data dir being
    /// $ATMLS_DATA_DIR, $XDG_DATA_HOME/atmls or ~/.local/share/atmls].
    #[arg(long, global = true, env = "ATMLS_PROFILE_DIR")]
    pub(crate) profile_dir: Option<PathBuf>,
    /// The X-Wing post-quantum suite: `prefer` (KeyPackages in X-Wing and 0x0001; new
    /// groups X-Wing when every first device has it), `require` (X-Wing only) or `off`
    /// (0x0001 only). Kept in the profile once given [default: the profile's, else
    /// prefer].
    #[arg(long, global = true, env = "ATMLS_XWING")]
    pub(crate) xwing: Option<atmls_client::suite::SuitePolicy>,
}

/// What `session.json` holds.
#[derive(Debug, Clone)]
pub(crate) struct SessionFile {
    pub(crate) pds: String,
    pub(crate) did: Did,
    pub(crate) handle: String,
    pub(crate) plc: String,
    pub(crate) ds: Did,
    pub(crate) access: String,
    pub(crate) refresh: String,
    /// Whether `createMailbox` goes through the PDS's `atproto-proxy` (docs/operators.md
    /// §4) instead of to the DS with a `getServiceAuth` token.
    pub(crate) ds_via_pds: bool,
    /// The device's id, kept outside the device database so that a device whose database
    /// is lost is restored under it (docs/spec.md §11.17).
    pub(crate) device_id: Option<String>,
    /// The device's X-Wing policy (docs/spec.md §11.19), as last given with `--xwing`.
    pub(crate) xwing: Option<atmls_client::suite::SuitePolicy>,
}

impl SessionFile {
    /// The X-Wing policy of this command: the one given now, else the profile's, else
    /// `prefer`.
    pub(crate) fn policy(
        &self,
        given: Option<atmls_client::suite::SuitePolicy>,
    ) -> atmls_client::suite::SuitePolicy {
        given
            .or(self.xwing)
            .unwrap_or(atmls_client::suite::SuitePolicy::Prefer)
    }

    fn to_json(&self) -> Value {
        json!({
            "pds": self.pds, "did": self.did, "handle": self.handle, "plc": self.plc,
            "ds": self.ds, "accessJwt": self.access, "refreshJwt": self.refresh,
            "dsViaPds": self.ds_via_pds, "deviceId": self.device_id,
            "xwing": self.xwing.map(|p| p.to_string()),
        })
    }

    fn from_json(v: &Value) -> Option<Self> {
        let s = |k: &str| v[k].as_str().map(str::to_owned);
        Some(Self {
            pds: s("pds")?,
            did: Did::new(s("did")?).ok()?,
            handle: s("handle")?,
            plc: s("plc")?,
            ds: Did::new(s("ds")?).ok()?,
            access: s("accessJwt")?,
            refresh: s("refreshJwt")?,
            // Absent in profiles written before the setting existed: direct.
            ds_via_pds: v["dsViaPds"].as_bool().unwrap_or(false),
            // Absent in profiles written before recovery: learnt at the next open.
            device_id: s("deviceId"),
            // Absent in profiles written before X-Wing: the default (prefer).
            xwing: s("xwing").and_then(|p| p.parse().ok()),
        })
    }
}

/// An open (locked) profile directory.
#[derive(Debug)]
pub(crate) struct Profile {
    pub(crate) name: String,
    /// The X-Wing policy given to this command (`--xwing`), if any.
    pub(crate) xwing: Option<atmls_client::suite::SuitePolicy>,
    dir: PathBuf,
    _lock: File,
}

impl Profile {
    /// Opens (creating if needed) and locks the profile named in `opts`.
    pub(crate) fn open(opts: &ProfileOpts) -> Result<Self, CliError> {
        let name = &opts.profile;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            || name.starts_with('.')
        {
            return Err(CliError::new(
                "BadProfileName",
                format!("profile name {name:?} may only use letters, digits, '-', '_' and '.'"),
            ));
        }
        let base = match &opts.profile_dir {
            Some(d) => d.clone(),
            None => default_data_dir()
                .ok_or_else(|| {
                    CliError::new(
                        "NoProfileDir",
                        "no profile directory: set --profile-dir, ATMLS_PROFILE_DIR, ATMLS_DATA_DIR or HOME",
                    )
                })?
                .join("profiles"),
        };
        let dir = base.join(name);
        atmls_fs::private_dir(&dir).map_err(|e| match e {
            atmls_fs::PrivateError::WritableByOthers { .. } => {
                CliError::new("UnsafeProfileDir", e.to_string())
            }
            e => CliError::new(
                "IoError",
                format!("cannot create the profile directory {}: {e}", dir.display()),
            ),
        })?;
        let lock_path = dir.join(LOCK_FILE);
        atmls_fs::private_file(&lock_path).map_err(|e| CliError::new("IoError", e.to_string()))?;
        let lock = File::options().write(true).open(&lock_path)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(CliError::new(
                    "ProfileBusy",
                    format!(
                        "profile {name} is in use by another atmls process (one process per device at a time; use `atmls watch GROUP --chat` to watch and send from one process)"
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        Ok(Self {
            name: name.clone(),
            xwing: opts.xwing,
            dir,
            _lock: lock,
        })
    }

    fn session_path(&self) -> PathBuf {
        self.dir.join(SESSION_FILE)
    }

    /// The device database's path.
    pub(crate) fn device_path(&self) -> PathBuf {
        self.dir.join(DEVICE_FILE)
    }

    /// Whether this profile already holds a device.
    pub(crate) fn has_device(&self) -> bool {
        self.device_path().exists()
    }

    /// The saved session, or a `NoSession` error telling how to make one.
    pub(crate) fn session(&self) -> Result<SessionFile, CliError> {
        let text = match std::fs::read_to_string(self.session_path()) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CliError::new(
                    "NoSession",
                    format!(
                        "profile {} has no account yet: run `atmls account create` or `atmls account login`",
                        self.name
                    ),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        serde_json::from_str(&text)
            .ok()
            .as_ref()
            .and_then(SessionFile::from_json)
            .ok_or_else(|| {
                CliError::new(
                    "CorruptProfile",
                    format!("{} is not a session file", self.session_path().display()),
                )
            })
    }

    /// The saved session if there is one (`None` if the profile has none yet).
    pub(crate) fn saved_session(&self) -> Result<Option<SessionFile>, CliError> {
        if self.session_path().exists() {
            self.session().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Writes the session file (readable by its owner only).
    pub(crate) fn save_session(&self, session: &SessionFile) -> Result<(), CliError> {
        let tmp = self.dir.join("session.json.tmp");
        let text = serde_json::to_string_pretty(&session.to_json())
            .map_err(|e| CliError::new("IoError", e.to_string()))?;
        write_private(&tmp, text.as_bytes())?;
        std::fs::rename(&tmp, self.session_path())?;
        Ok(())
    }

    /// Opens this profile's device, resuming the saved session.
    pub(crate) async fn device(&self) -> Result<(CliDevice, SessionFile), CliError> {
        let mut session = self.session()?;
        // A policy given now is kept for the profile's later commands.
        if self.xwing.is_some() && self.xwing != session.xwing {
            session.xwing = self.xwing;
            self.save_session(&session)?;
        }
        let policy = session.policy(self.xwing);
        if !self.has_device() && session.device_id.is_none() {
            return Err(CliError::new(
                "NoDevice",
                format!(
                    "profile {} has a session but no device: run `atmls account login` again",
                    self.name
                ),
            ));
        }
        let resolver = resolver(&session.plc);
        let pds = Arc::new(HttpPds::resume(
            &session.pds,
            session.did.clone(),
            session.access.clone(),
            session.refresh.clone(),
            resolver.clone(),
        ));
        let ds = ds_transport(&pds, resolver, session.ds_via_pds);
        let path = self.device_path();
        let device = match session.device_id.clone() {
            // The device database was lost: a new one for the same device id, which asks
            // the account's other devices to re-add it to its groups (§11.17).
            Some(id) if !self.has_device() => {
                let _ = std::fs::remove_file(atmls_client::at_rest::kdf_path(&path));
                let key = super::passphrase::passphrase(&self.name, true)?;
                let storage = atmls_client::Storage::File(&path, &key);
                let device =
                    Device::restore(storage, pds, ds, session.ds.clone(), &id, config(policy))
                        .await?;
                eprintln!(
                    "the device database was missing: device {id} restored; the account's other \
                     devices re-add it to its groups at their next sync"
                );
                device
            }
            _ => {
                let key = super::passphrase::passphrase(&self.name, false)?;
                Device::open(&path, &key, pds, ds, config(policy)).await?
            }
        };
        if session.device_id.as_deref() != Some(device.device_id()) {
            session.device_id = Some(device.device_id().to_owned());
            self.save_session(&session)?;
        }
        Ok((device, session))
    }

    /// Saves the device's current tokens (they change when the session is refreshed).
    pub(crate) async fn save_tokens(
        &self,
        device: &CliDevice,
        session: &mut SessionFile,
    ) -> Result<(), CliError> {
        let (access, refresh) = device.pds().tokens().await;
        if access != session.access || refresh != session.refresh {
            session.access = access;
            session.refresh = refresh;
            self.save_session(session)?;
        }
        Ok(())
    }
}

/// The DS transport of a device: direct, or `createMailbox` through the account's PDS
/// (sharing the device's session, so a token refresh by either is seen by both).
pub(crate) fn ds_transport(
    pds: &Arc<HttpPds>,
    resolver: Arc<dyn DidResolver>,
    via_pds: bool,
) -> HttpDs {
    let ds = HttpDs::new(resolver);
    if via_pds {
        ds.with_pds_proxy(pds.clone())
    } else {
        ds
    }
}

/// The device settings of the CLI: a person at a terminal waits at most 30 s after the
/// service is back before a mailbox is read or a queued message sent again.
/// The X-Wing policy is `--xwing` (prefer by default).
pub(crate) fn config(xwing: atmls_client::suite::SuitePolicy) -> DeviceConfig {
    DeviceConfig::default()
        .with_retry_backoff(
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(30),
        )
        .with_suite_policy(xwing)
}

/// A resolver for DIDs: `did:plc` at `plc`, `did:web` over https (plain http on loopback).
pub(crate) fn resolver(plc: &str) -> Arc<dyn DidResolver> {
    Arc::new(HttpResolver::new(
        ResolverConfig::default()
            .allow_loopback_http(true)
            .with_plc_url(plc),
    ))
}

/// The PLC directory to use for a PDS when none is given: the embedded host serves one on
/// loopback; anything else uses the public directory.
pub(crate) fn default_plc(pds: &str) -> String {
    let host = pds
        .split_once("://")
        .map_or(pds, |(_, r)| r)
        .split(['/', ':'])
        .next()
        .unwrap_or_default();
    if matches!(host, "127.0.0.1" | "localhost" | "[") || pds.contains("://[::1]") {
        pds.trim_end_matches('/').to_owned()
    } else {
        "https://plc.directory".to_owned()
    }
}

/// `$ATMLS_DATA_DIR`, `$XDG_DATA_HOME/atmls`, else `~/.local/share/atmls`.
pub(crate) fn default_data_dir() -> Option<PathBuf> {
    let nonempty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(d) = nonempty("ATMLS_DATA_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(xdg) = nonempty("XDG_DATA_HOME") {
        return Some(PathBuf::from(xdg).join("atmls"));
    }
    nonempty("HOME").map(|home| PathBuf::from(home).join(".local/share/atmls"))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plc_defaults() {
        assert_eq!(
            default_plc("http://127.0.0.1:2583/"),
            "http://127.0.0.1:2583"
        );
        assert_eq!(
            default_plc("http://localhost:2583"),
            "http://localhost:2583"
        );
        assert_eq!(
            default_plc("https://pds.example.com"),
            "https://plc.directory"
        );
    }

    #[test]
    fn one_process_per_profile() {
        let dir = tempfile::tempdir().unwrap();
        let opts = ProfileOpts {
            profile: "alice".into(),
            profile_dir: Some(dir.path().to_owned()),
            xwing: None,
        };
        let first = Profile::open(&opts).unwrap();
        assert_eq!(Profile::open(&opts).unwrap_err().name, "ProfileBusy");
        drop(first);
        let again = Profile::open(&opts).unwrap();
        assert_eq!(again.session().unwrap_err().name, "NoSession");
        let bad = ProfileOpts {
            profile: "../x".into(),
            ..opts
        };
        assert_eq!(Profile::open(&bad).unwrap_err().name, "BadProfileName");
    }
}
