//! `atmls profile show|set`: where a profile's account lives, seen and changed in one
//! place.

use clap::Subcommand;
use serde_json::json;

use super::Out;
use super::error::CliError;
use super::profile::Profile;

/// See or change a profile's settings.
#[derive(Debug, Subcommand)]
pub(crate) enum ProfileCommand {
    /// Show the profile's account and where it lives: PDS, PLC directory, DS.
    #[command(after_help = "Example:\n  atmls --profile alice profile show --json")]
    Show,
    /// Change where the profile looks for its PDS (the account moved) or its PLC
    /// directory (e.g. the official PDS's, which is not at the PDS URL). The DS is the
    /// device's own (its inbox lives there) and is fixed when the device is created.
    #[command(after_help = "Examples:
  atmls --profile alice profile set --plc http://localhost:2582
  atmls --profile alice profile set --pds https://pds.example.com")]
    Set {
        /// The PDS's base URL.
        #[arg(long)]
        pds: Option<String>,
        /// The PLC directory's base URL.
        #[arg(long)]
        plc: Option<String>,
    },
}

/// An `http://` or `https://` base URL, without a trailing slash.
fn base_url(what: &str, url: &str) -> Result<String, CliError> {
    let trimmed = url.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['?', '#', ' ']) => Ok(trimmed.to_owned()),
        _ => Err(CliError::new(
            "BadUrl",
            format!("--{what} {url:?}: expected an http:// or https:// base URL"),
        )),
    }
}

pub(crate) fn run(command: ProfileCommand, profile: &Profile, out: &Out) -> Result<(), CliError> {
    let mut session = profile.session()?;
    let what = match command {
        ProfileCommand::Show => "profile",
        ProfileCommand::Set { pds, plc } => {
            if pds.is_none() && plc.is_none() {
                return Err(CliError::new(
                    "NothingToSet",
                    "give --pds URL and/or --plc URL",
                ));
            }
            if let Some(pds) = pds {
                session.pds = base_url("pds", &pds)?;
            }
            if let Some(plc) = plc {
                session.plc = base_url("plc", &plc)?;
            }
            profile.save_session(&session)?;
            "saved"
        }
    };
    out.emit(
        json!({
            "profile": profile.name, "handle": session.handle, "did": session.did,
            "pds": session.pds, "plc": session.plc, "ds": session.ds,
            "dsViaPds": session.ds_via_pds,
            "device": profile.has_device(),
        }),
        || {
            format!(
                "{what}: {}\n  account {} ({})\n  PDS {}\n  PLC directory {}\n  DS {}{}",
                profile.name,
                session.handle,
                session.did,
                session.pds,
                session.plc,
                session.ds,
                if profile.has_device() {
                    ""
                } else {
                    "\n  no device yet: run `atmls account create` or `login` again"
                }
            )
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            base_url("plc", "http://localhost:2582/").unwrap(),
            "http://localhost:2582"
        );
        assert_eq!(
            base_url("pds", "https://pds.example.com").unwrap(),
            "https://pds.example.com"
        );
        for bad in ["localhost:2582", "ftp://x", "https://", "http://a b"] {
            assert_eq!(base_url("plc", bad).unwrap_err().name, "BadUrl", "{bad}");
        }
    }
}
