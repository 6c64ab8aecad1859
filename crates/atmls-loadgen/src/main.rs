//! `atmls-loadgen`: drives the delivery service with signed requests and subscriptions
//! and prints a result table (or JSON). See the crate documentation and
//! `docs/performance.md`.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::time::Duration;

use atmls_loadgen::{Database, Plan, Scenario, Target, run, to_json};
use clap::{Parser, ValueEnum};

/// Load generator for the atmls delivery service.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// What to run, in this order (several may be given, e.g. `baseline ingest`).
    #[arg(value_enum, num_args = 0.., default_values = ["all"])]
    scenario: Vec<Which>,
    /// A running `atmls serve` on loopback (e.g. http://127.0.0.1:2583) instead of a DS
    /// started in this process.
    #[arg(long)]
    url: Option<String>,
    /// Run the in-process DS on this PostgreSQL database (`postgres://…`; also
    /// `ATMLS_DATABASE_URL`) instead of a SQLite file; each scenario uses a new schema,
    /// dropped afterwards. The baselines then add raw PostgreSQL transactions.
    #[arg(long)]
    database: Option<String>,
    /// DS processes over `--database` (each with its own store, pool, notification
    /// listener and loopback listener; connections are spread over them).
    #[arg(long, default_value_t = 1)]
    processes: usize,
    /// Connections in each DS process's pool (`--database`).
    #[arg(long, default_value_t = 8)]
    pool_size: usize,
    /// Writer lanes in each DS process (`--database`): group commits in flight per
    /// process; the pool grows to cover them.
    #[arg(long, default_value_t = atmls_ds_postgres::DEFAULT_WRITER_LANES)]
    writer_lanes: usize,
    /// The PLC directory of `--url` when it is not on the same listener (as printed by
    /// `atmls-loadgen serve`).
    #[arg(long)]
    plc_url: Option<String>,
    /// How long `serve` serves, in seconds (it also stops when stdin closes).
    #[arg(long, default_value_t = 600)]
    serve_seconds: u64,
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
    /// With several processes, fill the `catchup` mailbox through all of them at once
    /// (cross-process appends racing on one mailbox) instead of through the first.
    #[arg(long)]
    catchup_fill_all_processes: bool,
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
    /// Start the in-process DS and its PLC directory and serve them (for a second
    /// loadgen process with `--url`/`--plc-url`, e.g. to read the DS's RSS alone).
    Serve,
}

fn plan(args: &Args) -> Result<Plan, atmls_loadgen::LoadgenError> {
    let database = match args
        .database
        .clone()
        .or_else(|| std::env::var("ATMLS_DATABASE_URL").ok())
    {
        Some(url) => Some(
            Database::new(&url)?
                .with_processes(args.processes)
                .with_pool_size(args.pool_size)
                .with_writer_lanes(args.writer_lanes),
        ),
        None => None,
    };
    let mut plan = Plan {
        scenarios: args
            .scenario
            .iter()
            .flat_map(|w| match w {
                Which::All => Scenario::ALL.to_vec(),
                Which::Baseline => vec![Scenario::Baseline],
                Which::Ingest => vec![Scenario::Ingest],
                Which::Fanout => vec![Scenario::Fanout],
                Which::Catchup => vec![Scenario::Catchup],
                Which::Rss => vec![Scenario::Rss],
                Which::Serve => Vec::new(),
            })
            .collect(),
        url: args.url.clone(),
        plc_url: args.plc_url.clone(),
        database,
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
    plan.catchup.fill_all_processes = args.catchup_fill_all_processes;
    plan.rss.mailboxes = args.mailboxes;
    plan.rss.connections = args.connections;
    plan.rss.server_pid = args.server_pid;
    Ok(plan)
}

/// Serves an in-process DS until stdin closes, Ctrl-C, or `limit` passed.
async fn serve(limit: Duration, plan: &Plan) -> Result<(), atmls_loadgen::LoadgenError> {
    atmls_loadgen::fdlimit::ensure_open_files(8192)?;
    let target = Target::start(plan.database.as_ref()).await?;
    for i in 0..target.processes() {
        println!(
            "listening on http://{} plc http://{} pid {}",
            target.addr_of(i),
            target.plc_addr(),
            std::process::id()
        );
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        // Ends when stdin closes (bounded by the process's life).
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        let _ = tx.send(());
    });
    tokio::select! {
        _ = rx => {}
        _ = tokio::signal::ctrl_c() => {}
        () = tokio::time::sleep(limit) => {}
    }
    target.close().await;
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let plan = match plan(&args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("atmls-loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };
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
    if args.scenario.iter().any(|w| matches!(w, Which::Serve)) {
        return match runtime.block_on(serve(Duration::from_secs(args.serve_seconds), &plan)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("atmls-loadgen: {e}");
                ExitCode::FAILURE
            }
        };
    }
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
