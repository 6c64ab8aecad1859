//! `atmls ds …`: operating the delivery service's storage.

use std::path::PathBuf;

use atmls_ds::SqliteStore;
use atmls_server::scaled::{CopyError, NonEmptyTarget, PgConfig, PgStore, copy_from_sqlite};
use clap::Subcommand;

/// DS subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum DsCommand {
    /// Copy a SQLite DS (every mailbox, envelope, ended epoch and account count, with
    /// the same seqs) into a PostgreSQL database, in one transaction, verified before it
    /// commits. Stop the DS first.
    #[command(after_help = "Example:
  atmls ds migrate-store --from /var/lib/atmls/ds.sqlite \\
      --to postgres://atmls@db.internal/atmls

The URL may also come from ATMLS_DATABASE_URL (keeps the password out of the process list).
A target that already holds data is refused unless --into-non-empty is given; then a mailbox
that already exists there fails the whole copy and account counts are added.")]
    MigrateStore {
        /// The DS's SQLite file (`ds.sqlite` in the data directory).
        #[arg(long)]
        from: PathBuf,
        /// The PostgreSQL database (`postgres://user:password@host:port/database`).
        #[arg(long, env = "ATMLS_DATABASE_URL", hide_env_values = true)]
        to: String,
        /// Copy even if the target already holds mailboxes, envelopes or account counts.
        #[arg(long)]
        into_non_empty: bool,
    },
}

/// Why a DS command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DsCmdError {
    #[error("--from {0}: no such file")]
    NoSource(PathBuf),
    #[error("--from: {0}")]
    Source(atmls_ds::StoreError),
    #[error("--to: {0}")]
    Url(atmls_server::scaled::InvalidUrl),
    #[error("--to: {0}")]
    Connect(atmls_ds::StoreError),
    #[error(transparent)]
    Copy(#[from] CopyError),
}

pub(crate) fn run(cmd: DsCommand) -> Result<(), DsCmdError> {
    match cmd {
        DsCommand::MigrateStore {
            from,
            to,
            into_non_empty,
        } => {
            // Opening would create an empty database: a mistyped path must not "migrate"
            // nothing successfully.
            if !from.is_file() {
                return Err(DsCmdError::NoSource(from));
            }
            let source = SqliteStore::open(&from).map_err(DsCmdError::Source)?;
            let config = PgConfig::new(&to).map_err(DsCmdError::Url)?;
            let target = PgStore::connect(&config).map_err(DsCmdError::Connect)?;
            let mode = if into_non_empty {
                NonEmptyTarget::Merge
            } else {
                NonEmptyTarget::Refuse
            };
            let r = copy_from_sqlite(&source, &target, mode)?;
            say!(
                "copied and verified: {} groups, {} inboxes, {} envelopes ({} payload bytes), \
                 {} ended epochs, {} account counts",
                r.groups,
                r.inboxes,
                r.envelopes,
                r.payload_bytes,
                r.ended_epochs,
                r.accounts
            );
            Ok(())
        }
    }
}
