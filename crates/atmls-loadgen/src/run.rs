//! A run: which scenarios, with which settings, against which target; and the report.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::LoadgenError;
use crate::postgres::Database;
use crate::report::{Conditions, Figure, Goal, Report};
use crate::scenario::baseline::{SqliteResult, noop_http, sqlite_inserts};
use crate::scenario::catchup::{self, CatchupConfig, CatchupResult};
use crate::scenario::fanout::{self, FanoutConfig, FanoutResult};
use crate::scenario::ingest::{self, IngestConfig, IngestResult};
use crate::scenario::pg_baseline::{PgResult, pg_inserts};
use crate::scenario::rss::{self, RssConfig, RssResult};
use crate::stats::{compiler_processes, load_average};
use crate::target::Target;

/// The scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// The baselines: no-op hyper handler, raw SQLite transactions, and with a
    /// database raw PostgreSQL transactions.
    Baseline,
    /// Ingest, one envelope per request and batched.
    Ingest,
    /// Fan-out latency to many subscribers.
    Fanout,
    /// Catch-up read.
    Catchup,
    /// Memory with many mailboxes and connections.
    Rss,
}

impl Scenario {
    /// Every scenario in the order `all` runs them: memory first, while the process is
    /// fresh.
    pub const ALL: [Scenario; 5] = [
        Scenario::Rss,
        Scenario::Baseline,
        Scenario::Ingest,
        Scenario::Fanout,
        Scenario::Catchup,
    ];
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The scenarios, in order.
    pub scenarios: Vec<Scenario>,
    /// A running `atmls serve` on loopback, or `None` to start one in process per
    /// scenario.
    pub url: Option<String>,
    /// The PLC directory of `url` when it is not on the same listener.
    pub plc_url: Option<String>,
    /// Without `url`: the in-process DS on this PostgreSQL database (with its number of
    /// processes) instead of SQLite; the baselines then add raw PostgreSQL transactions.
    pub database: Option<Database>,
    /// `ingest` (one envelope per request; the batched variant uses `batch`).
    pub ingest: IngestConfig,
    /// Envelopes per request of the batched `ingest`.
    pub batch: usize,
    /// `fanout`.
    pub fanout: FanoutConfig,
    /// `catchup`.
    pub catchup: CatchupConfig,
    /// `rss`.
    pub rss: RssConfig,
    /// Duration of each raw SQLite baseline.
    pub sqlite_duration: Duration,
}

impl Default for Plan {
    /// The full scale of issue 6: 16 senders for 5 s, batches of 32, 1000 subscribers,
    /// 100,000 envelopes, 10,000 mailboxes and 1000 connections.
    fn default() -> Self {
        Self {
            scenarios: Scenario::ALL.to_vec(),
            url: None,
            plc_url: None,
            database: None,
            ingest: IngestConfig::default(),
            batch: 32,
            fanout: FanoutConfig::default(),
            catchup: CatchupConfig::default(),
            rss: RssConfig::default(),
            sqlite_duration: Duration::from_secs(2),
        }
    }
}

impl Plan {
    /// Sockets the plan needs at most (client and server ends, in process).
    pub fn sockets(&self) -> u64 {
        let per = |n: usize| n as u64 * 2 + 256;
        self.scenarios
            .iter()
            .map(|s| match s {
                Scenario::Fanout => per(self.fanout.subscribers),
                Scenario::Rss => per(self.rss.connections),
                _ => per(self.ingest.senders),
            })
            .max()
            .unwrap_or(256)
    }
}

async fn target(plan: &Plan) -> Result<Arc<Target>, LoadgenError> {
    Ok(Arc::new(match &plan.url {
        Some(url) => Target::connect(url, plan.plc_url.as_deref()).await?,
        None => Target::start(plan.database.as_ref()).await?,
    }))
}

async fn close(target: Arc<Target>) {
    if let Ok(t) = Arc::try_unwrap(target) {
        t.close().await;
    }
}

/// Results of each scenario, as they come.
#[derive(Debug, Default)]
struct Results {
    noop: Option<IngestResult>,
    sqlite1: Option<SqliteResult>,
    sqlite_batch: Option<SqliteResult>,
    /// Raw PostgreSQL: 1 row on 1 connection, 1 row on `senders` connections, a batch on
    /// 1, a batch on `senders`.
    pg: Option<[PgResult; 4]>,
    single: Option<IngestResult>,
    batched: Option<IngestResult>,
    fanout: Option<FanoutResult>,
    catchup: Option<CatchupResult>,
    rss: Option<RssResult>,
}

/// Runs the plan; prints one line per finished step to stderr when `progress`.
pub async fn run(plan: &Plan, progress: bool) -> Result<Report, LoadgenError> {
    let say = |s: &str| {
        if progress {
            eprintln!("atmls-loadgen: {s}");
        }
    };
    let load_before = load_average();
    let compilers_before = compiler_processes();
    let open_files = crate::fdlimit::ensure_open_files(plan.sockets())?;
    let mut r = Results::default();
    let mut details = Map::new();
    for scenario in &plan.scenarios {
        match scenario {
            Scenario::Baseline => {
                say("baseline: no-op hyper handler");
                let noop = noop_http(&plan.ingest).await?;
                say("baseline: raw SQLite transactions");
                let (d, size) = (plan.sqlite_duration, plan.ingest.payload_bytes);
                let batch = plan.batch;
                let (one, many) = tokio::task::spawn_blocking(move || {
                    Ok::<_, LoadgenError>((
                        sqlite_inserts(d, 1, size)?,
                        sqlite_inserts(d, batch, size)?,
                    ))
                })
                .await
                .map_err(|e| LoadgenError::Check(e.to_string()))??;
                details.insert("noop_http".into(), json!(noop));
                details.insert("sqlite_1_row_txn".into(), json!(one));
                details.insert("sqlite_batch_txn".into(), json!(many));
                (r.noop, r.sqlite1, r.sqlite_batch) = (Some(noop), Some(one), Some(many));
                if let Some(db) = &plan.database {
                    say("baseline: raw PostgreSQL transactions");
                    let (n, size) = (plan.ingest.senders, plan.ingest.payload_bytes);
                    let pg = [
                        pg_inserts(db, d, 1, 1, size).await?,
                        pg_inserts(db, d, n, 1, size).await?,
                        pg_inserts(db, d, 1, batch, size).await?,
                        pg_inserts(db, d, n, batch, size).await?,
                    ];
                    details.insert("postgres_raw".into(), json!(pg));
                    r.pg = Some(pg);
                }
            }
            Scenario::Ingest => {
                say("ingest: one envelope per request");
                let t = target(plan).await?;
                let single = ingest::run(&t, &plan.ingest).await?;
                close(t).await;
                say("ingest: batched");
                let t = target(plan).await?;
                let cfg = IngestConfig {
                    batch: plan.batch,
                    ..plan.ingest.clone()
                };
                let batched = ingest::run(&t, &cfg).await?;
                close(t).await;
                details.insert("ingest_single".into(), json!(single));
                details.insert("ingest_batched".into(), json!(batched));
                (r.single, r.batched) = (Some(single), Some(batched));
            }
            Scenario::Fanout => {
                say("fanout");
                let t = target(plan).await?;
                let f = fanout::run(&t, &plan.fanout).await?;
                close(t).await;
                details.insert("fanout".into(), json!(f));
                r.fanout = Some(f);
            }
            Scenario::Catchup => {
                say("catchup");
                let t = target(plan).await?;
                let c = catchup::run(&t, &plan.catchup).await?;
                close(t).await;
                details.insert("catchup".into(), json!(c));
                r.catchup = Some(c);
            }
            Scenario::Rss => {
                say("rss");
                let t = target(plan).await?;
                let m = rss::run(&t, &plan.rss).await?;
                close(t).await;
                details.insert("rss".into(), json!(m));
                r.rss = Some(m);
            }
        }
    }
    Ok(Report {
        conditions: Conditions {
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            target: plan.url.clone().unwrap_or_else(|| match &plan.database {
                Some(db) => format!("in-process, PostgreSQL, {} DS process(es)", db.processes()),
                None => "in-process, SQLite".into(),
            }),
            load_before,
            load_after: load_average(),
            compilers_before,
            compilers_after: compiler_processes(),
            open_files: (open_files != u64::MAX).then_some(open_files),
        },
        figures: figures(plan, &r),
        details,
    })
}

fn figures(plan: &Plan, r: &Results) -> Vec<Figure> {
    let mut out = Vec::new();
    let noop = r.noop.as_ref().map(|n| n.requests_per_s);
    let raw1 = r.sqlite1.as_ref().map(|s| s.txns_per_s);
    let raw_batch = r.sqlite_batch.as_ref().map(|s| s.rows_per_s);
    // On PostgreSQL the ratios are to the raw PostgreSQL rates at the ingest's
    // concurrency (one connection per sender), the DS's own database.
    let on_pg = plan.database.is_some();
    let (raw1, raw_batch, raw_name) = match (&r.pg, on_pg) {
        (Some([_, one, _, many]), true) => (
            Some(one.txns_per_s),
            Some(many.rows_per_s),
            format!("raw PG, {} connections", one.connections),
        ),
        _ => (raw1, raw_batch, "raw SQLite".to_owned()),
    };
    let with = |f: Figure, name: &str, v: Option<f64>| match v {
        Some(v) => f.against(name, v),
        None => f,
    };
    if let Some(n) = &r.noop {
        out.push(Figure::new(
            "baseline",
            "no-op hyper handler, same client",
            n.requests_per_s,
            "req/s",
        ));
        out.push(Figure::new(
            "baseline",
            "no-op hyper handler p99",
            n.latency.p99_ms,
            "ms",
        ));
    }
    if let Some(s) = &r.sqlite1 {
        out.push(Figure::new(
            "baseline",
            "raw SQLite txn, 1 row of 1 KiB",
            s.txns_per_s,
            "txn/s",
        ));
    }
    if let Some(s) = &r.sqlite_batch {
        let name = format!("raw SQLite txn, {} rows of 1 KiB", s.rows_per_txn);
        out.push(Figure::new("baseline", &name, s.rows_per_s, "rows/s"));
    }
    if let Some(pg) = &r.pg {
        for p in pg {
            let name = format!(
                "raw PG txn, {} row(s) of 1 KiB, {} connection(s)",
                p.rows_per_txn, p.connections
            );
            out.push(Figure::new("baseline", &name, p.txns_per_s, "txn/s"));
            if p.rows_per_txn > 1 {
                out.push(Figure::new(
                    "baseline",
                    &format!("{name}: rows"),
                    p.rows_per_s,
                    "rows/s",
                ));
            }
        }
    }
    if let Some(s) = &r.single {
        let f = Figure::new(
            "ingest",
            "1 envelope/request: requests",
            s.requests_per_s,
            "req/s",
        );
        out.push(with(f, "no-op handler", noop));
        let f = Figure::new(
            "ingest",
            "1 envelope/request: envelopes",
            s.envelopes_per_s,
            "env/s",
        );
        let f = with(f, &format!("{raw_name} 1-row txn"), raw1);
        if on_pg && let Some(ratio) = f.ratio {
            let name = format!("1 envelope/request ÷ {raw_name} 1-row txn/s");
            out.push(Figure::new("ingest", &name, ratio, "×").goal(Goal::AtLeast(0.5)));
        }
        out.push(f.goal(Goal::AtLeast(10_000.0)));
        out.push(Figure::new(
            "ingest",
            "1 envelope/request: p50",
            s.latency.p50_ms,
            "ms",
        ));
        out.push(Figure::new(
            "ingest",
            "1 envelope/request: p99",
            s.latency.p99_ms,
            "ms",
        ));
    }
    if let Some(s) = &r.batched {
        let name = format!("{} envelopes/request: requests", plan.batch);
        let f = Figure::new("ingest", &name, s.requests_per_s, "req/s");
        out.push(with(f, "no-op handler", noop));
        let name = format!("{} envelopes/request: envelopes", plan.batch);
        let f = Figure::new("ingest", &name, s.envelopes_per_s, "env/s");
        let f = with(f, &format!("{raw_name} batched txn rows"), raw_batch);
        if on_pg && let Some(ratio) = f.ratio {
            let name = format!(
                "{} envelopes/request ÷ {raw_name} batched rows/s",
                plan.batch
            );
            out.push(Figure::new("ingest", &name, ratio, "×").goal(Goal::AtLeast(0.5)));
        }
        out.push(f.goal(Goal::AtLeast(10_000.0)));
        let name = format!("{} envelopes/request: p50", plan.batch);
        out.push(Figure::new("ingest", &name, s.latency.p50_ms, "ms"));
        let name = format!("{} envelopes/request: p99", plan.batch);
        out.push(Figure::new("ingest", &name, s.latency.p99_ms, "ms"));
    }
    if let Some(f) = &r.fanout {
        let name = format!("send->receive p50, {} subscribers", f.subscribers);
        out.push(Figure::new("fanout", &name, f.latency.p50_ms, "ms"));
        let name = format!("send->receive p99, {} subscribers", f.subscribers);
        let fig = Figure::new("fanout", &name, f.latency.p99_ms, "ms")
            .against("sender's ack p99", f.ack_latency.p99_ms)
            .goal(Goal::AtMost(50.0));
        out.push(fig);
        if let Some(cross) = &f.cross_latency {
            let name = format!(
                "send->receive p99, subscribers at the other {} process(es)",
                f.processes - 1
            );
            out.push(Figure::new("fanout", &name, cross.p99_ms, "ms").goal(Goal::AtMost(50.0)));
        }
        out.push(Figure::new(
            "fanout",
            "send->receive max",
            f.latency.max_ms,
            "ms",
        ));
        out.push(Figure::new("fanout", "deliveries", f.deliveries as f64, ""));
    }
    if let Some(c) = &r.catchup {
        let name = format!("read {} envelopes, end to end", c.envelopes);
        let f = Figure::new("catchup", &name, c.envelopes_per_s, "env/s");
        out.push(f.goal(Goal::AtLeast(100_000.0)));
        out.push(Figure::new(
            "catchup",
            "wire time only (client parsing excluded)",
            c.wire_envelopes_per_s,
            "env/s",
        ));
        out.push(Figure::new(
            "catchup",
            "fill (batches of 100, one mailbox)",
            c.fill_envelopes_per_s,
            "env/s",
        ));
    }
    if let Some(m) = &r.rss {
        let mib = |k: Option<u64>| k.map_or(f64::NAN, |k| k as f64 / 1024.0);
        let who = if m.includes_client {
            "DS + loadgen client"
        } else {
            "DS process"
        };
        out.push(Figure::new(
            "rss",
            &format!("{who}: at start"),
            mib(m.start_kib),
            "MiB",
        ));
        let name = format!("{who}: {} mailboxes", m.mailboxes);
        out.push(Figure::new("rss", &name, mib(m.mailboxes_kib), "MiB"));
        let name = format!(
            "{who}: + {} connections ({} subscriptions)",
            m.connections, m.subscriptions
        );
        let f = Figure::new("rss", &name, mib(m.connections_kib), "MiB");
        out.push(f.goal(Goal::AtMost(200.0 * 1_000_000.0 / 1_048_576.0)));
        let name = format!("{who}: after one envelope per subscription");
        let f = Figure::new("rss", &name, mib(m.delivered_kib), "MiB");
        out.push(f.goal(Goal::AtMost(200.0 * 1_000_000.0 / 1_048_576.0)));
        out.push(Figure::new(
            "rss",
            &format!("{who}: peak (VmHWM)"),
            mib(m.peak_kib),
            "MiB",
        ));
    }
    out
}

/// The report as JSON.
pub fn to_json(report: &Report) -> Value {
    json!(report)
}
