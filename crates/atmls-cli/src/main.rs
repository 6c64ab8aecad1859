//! `atmls`: the command-line entry point.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `println!` for command output: a closed pipe (`atmls group info tea | head -2`) ends the
/// process quietly with status 0, as Unix filters do, instead of a panic.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::write_line(format_args!($($arg)*))
    };
}

mod client;
mod demo;
mod ds_cmd;
mod repo_cmd;
mod serve;
mod status;

/// End-to-end encrypted messaging for AT Protocol, on MLS.
#[derive(Debug, Parser)]
#[command(
    name = "atmls",
    version,
    about,
    after_help = "Start here:
  atmls demo                      an encrypted group conversation from nothing, every step checked
  atmls serve                     host + PLC directory + delivery service on 127.0.0.1:2583

Chat at a terminal (each --profile is one account's device):
  atmls --profile alice account create --pds http://127.0.0.1:2583 --handle alice.test \\
      --email alice@example.com --password 'correct horse'
  atmls --profile alice group create tea --with bob.test
  atmls --profile alice send tea 'hello bob'
  atmls --profile bob watch tea --chat

Each profile's device database is encrypted at rest: commands ask for its passphrase on
the terminal, or take it from ATMLS_PASSPHRASE.

Every option can also be set by its environment variable (shown in each --help)."
)]
struct Cli {
    #[command(flatten)]
    profile: client::profile::ProfileOpts,
    /// Log lines on standard error: `human` or `json` (one object per line).
    #[arg(long, global = true, env = "ATMLS_LOG_FORMAT", default_value = "human")]
    log_format: atmls_server::xrpc::logging::LogFormat,
    /// Which log events to write, in the `RUST_LOG` syntax (e.g. `info`,
    /// `atmls_xrpc=debug`) [default: RUST_LOG, else `info` for serve and nothing for
    /// the other commands].
    #[arg(long, global = true, env = "ATMLS_LOG")]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show which components of atmls are built.
    Status,
    /// Run the embedded PDS-compatible host, the development PLC directory and the DS.
    Serve(serve::ServeArgs),
    /// From nothing to a verified encrypted group conversation, in one command.
    Demo(demo::DemoArgs),
    /// Create or log in to an account; this profile becomes one of its devices.
    Account(client::AccountArgs),
    /// Show or change where the profile's account lives (PDS, PLC directory).
    Profile(client::ProfileArgs),
    /// Publish, list (verified) and rotate KeyPackages.
    Keys(client::KeysArgs),
    /// Create groups, add and remove members, leave, list, inspect.
    Group(client::GroupArgs),
    /// Send a message to a group.
    #[command(after_help = "Examples:
  atmls --profile alice send tea 'hello everyone'
  atmls --profile alice send tea --wait 'sent before the command ends'

When the DS cannot take the message now (down, restarting), it is kept in the profile's
outbox (\"queued, will send\", exit 0) and sent, in order, by the next send, inbox or
watch of the profile; with --wait the command waits for it instead.")]
    Send(client::SendArgs),
    /// Print messages and group changes live as they arrive (Ctrl-C stops).
    #[command(after_help = "Examples:
  atmls --profile bob watch                 every group
  atmls --profile bob watch tea --chat      one group; lines typed are sent to it
  atmls --profile bob watch --json          one JSON object per line")]
    Watch(client::WatchArgs),
    /// Fetch what is waiting (invitations, changes, messages) once and print it.
    #[command(after_help = "Example:\n  atmls --profile bob inbox --json")]
    Inbox(client::InboxArgs),
    /// Inspect and verify AT repositories and record proofs (CAR files).
    #[command(subcommand)]
    Repo(repo_cmd::RepoCommand),
    /// Operate the delivery service's storage (copy a SQLite DS into PostgreSQL).
    #[command(subcommand)]
    Ds(ds_cmd::DsCommand),
}

/// The async runtime of the client commands and the demo (two workers: the machine's
/// size, and enough for a device's run loop beside the command).
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve(_) => "info",
        _ => "off",
    };
    if let Err(e) =
        atmls_server::xrpc::logging::init(cli.log_format, cli.log.as_deref(), default_level)
    {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let profile = cli.profile;
    let client = |c| {
        if client::run(c, &profile) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    };
    let result = match cli.command {
        Command::Status => {
            status::print();
            Ok(())
        }
        Command::Repo(cmd) => repo_cmd::run(cmd).map_err(|e| e.to_string()),
        Command::Ds(cmd) => ds_cmd::run(cmd).map_err(|e| e.to_string()),
        Command::Serve(args) => serve::run(args).map_err(|e| e.to_string()),
        Command::Demo(args) => return demo::run(args),
        Command::Account(a) => return client(client::ClientCommand::Account(a)),
        Command::Profile(a) => return client(client::ClientCommand::Profile(a)),
        Command::Keys(a) => return client(client::ClientCommand::Keys(a)),
        Command::Group(a) => return client(client::ClientCommand::Group(a)),
        Command::Send(a) => return client(client::ClientCommand::Send(a)),
        Command::Watch(a) => return client(client::ClientCommand::Watch(a)),
        Command::Inbox(a) => return client(client::ClientCommand::Inbox(a)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes one line to standard output (see [`say!`]).
pub(crate) fn write_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: cannot write to standard output: {e}");
            std::process::exit(1);
        }
    }
}
