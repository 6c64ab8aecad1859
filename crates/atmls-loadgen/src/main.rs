//! `atmls-loadgen`: drives the delivery service with signed requests and subscriptions
//! and prints a result table (or JSON). See the crate documentation and
//! `docs/performance.md`.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use atmls_loadgen::{Plan, Scenario, run, to_json};
use clap::{Parser, ValueEnum};

/// Load generator for the atmls delivery service.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// What to run.
    #[arg(value_enum, default_value = "all")]
    scenario: Which,
    /// A running `atmls serve` on loopback (e.g. http://127.0.0.1:2583) instead of a DS
    /// started in this process.
    #[arg(long)]
    url: Option<String>,
    /// The server's process id, to read its RSS in `rss` with `--url`.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Seconds each ingest run (and the no-op baseline) lasts.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Concurrent senders of `ingest` and the no-op baseline.
    #[arg(long, default_value_t = 16)]
    senders: usize,
    /// Envelopes per request of the batched `ingest`.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Subscribers of `fanout`.
    #[arg(long, default_value_t = 1000)]
    subscribers: usize,
    /// Envelopes measured in `fanout`.
    #[arg(long, default_value_t = 200)]
    fanout_envelopes: u64,
    /// Milliseconds between `fanout` sends.
    #[arg(long, default_value_t = 20)]
    interval_ms: u64,
    /// Envelopes of `catchup`.
    #[arg(long, default_value_t = 100_000)]
    catchup_envelopes: u64,
    /// Mailboxes of `rss`.
    #[arg(long, default_value_t = 10_000)]
    mailboxes: usize,
    /// Connections of `rss`.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Which {
    All,
    Baseline,
    Ingest,
    Fanout,
    Catchup,
    Rss,
}

fn plan(args: &Args) -> Plan {
    let mut plan = Plan {
        scenarios: match args.scenario {
            Which::All => Scenario::ALL.to_vec(),
            Which::Baseline => vec![Scenario::Baseline],
            Which::Ingest => vec![Scenario::Baseline, Scenario::Ingest],
            Which::Fanout => vec![Scenario::Fanout],
            Which::Catchup => vec![Scenario::Catchup],
            Which::Rss => vec![Scenario::Rss],
        },
        url: args.url.clone(),
        batch: args.batch.max(1),
        ..Plan::default()
    };
    plan.ingest.duration = Duration::from_secs_f64(args.duration.clamp(0.1, 600.0));
    plan.ingest.senders = args.senders.max(1);
    plan.ingest.mailboxes = args.senders.max(1);
    plan.fanout.subscribers = args.subscribers;
    plan.fanout.envelopes = args.fanout_envelopes;
    plan.fanout.interval = Duration::from_millis(args.interval_ms);
    plan.catchup.envelopes = args.catchup_envelopes;
    plan.rss.mailboxes = args.mailboxes;
    plan.rss.connections = args.connections;
    plan.rss.server_pid = args.server_pid;
    plan
}

fn main() -> ExitCode {
    let args = Args::parse();
    let plan = plan(&args);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("atmls-loadgen: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&plan, true)) {
        Ok(report) => {
            if args.json {
                println!("{:#}", to_json(&report));
            } else {
                print!("{}", report.table());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("atmls-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}
