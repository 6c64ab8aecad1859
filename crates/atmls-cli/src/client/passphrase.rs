//! The passphrase of a profile's device database (docs/spec.md §11.11, decision 0021).
//!
//! Every command that opens the device database needs it: from `ATMLS_PASSPHRASE` when
//! set (scripts, tests, `atmls demo`), else asked for on the terminal without echo. There
//! is no keyring source yet (headless machines have none); a keyring would give the raw
//! key instead ([`atmls_client::at_rest::DatabaseKey`]).
//!
//! `ATMLS_KDF_INSECURE_FOR_TESTS=1` when a device is created makes its key derivation
//! cheap (64 KiB, 1 pass): for test suites only, recorded in the database's `.kdf` file.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use atmls_client::at_rest::{KdfParams, Passphrase};
use zeroize::Zeroizing;

use super::error::CliError;

/// The environment variable holding the passphrase.
pub(crate) const ENV: &str = "ATMLS_PASSPHRASE";
/// The environment variable asking for the cheap key derivation (tests only).
pub(crate) const INSECURE_KDF_ENV: &str = "ATMLS_KDF_INSECURE_FOR_TESTS";

/// The passphrase of `profile`'s device database (`creating`: asked twice on a terminal).
pub(crate) fn passphrase(profile: &str, creating: bool) -> Result<Passphrase, CliError> {
    let phrase = match std::env::var(ENV) {
        Ok(p) if !p.is_empty() => Zeroizing::new(p),
        _ => prompt(profile, creating)?,
    };
    let mut p = Passphrase::new(phrase.as_str());
    if std::env::var(INSECURE_KDF_ENV).is_ok_and(|v| v == "1") {
        p = p.with_kdf_params(KdfParams::insecure_for_tests());
    }
    Ok(p)
}

fn prompt(profile: &str, creating: bool) -> Result<Zeroizing<String>, CliError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::new(
            "NoPassphrase",
            format!(
                "the device database of profile {profile} is encrypted: set {ENV} or run on a terminal to be asked"
            ),
        ));
    }
    let first = read_hidden(&format!("passphrase for profile {profile}: "))?;
    if first.is_empty() {
        return Err(CliError::new("NoPassphrase", "empty passphrase"));
    }
    if creating {
        let again = read_hidden("again: ")?;
        if *again != *first {
            return Err(CliError::new("NoPassphrase", "the two passphrases differ"));
        }
    }
    Ok(first)
}

/// One line from the terminal with echo off (restored afterwards, also on error).
fn read_hidden(label: &str) -> Result<Zeroizing<String>, CliError> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let mut err = std::io::stderr();
    let _ = write!(err, "{label}");
    let _ = err.flush();
    let saved = tcgetattr(&stdin).map_err(std::io::Error::from)?;
    let mut quiet = saved.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    tcsetattr(&stdin, OptionalActions::Now, &quiet).map_err(std::io::Error::from)?;
    let mut line = Zeroizing::new(String::new());
    let read = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(&stdin, OptionalActions::Now, &saved);
    let _ = writeln!(err);
    read?;
    while line.ends_with(['\n', '\r']) {
        line.pop();
    }
    Ok(line)
}
