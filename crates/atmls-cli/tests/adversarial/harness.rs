//! The stage of every attack: the real `atmls serve` binary on loopback with every log
//! line captured, honest principals sending beside the attacker, and the checks that
//! close each attack (honest failures, acknowledged envelopes, server memory, logs).

use std::io::{BufRead as _, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use atmls_ds::auth::DsMethod;
use atmls_loadgen::client::{Conn, send_body};
use atmls_loadgen::scenario::catchup::read_pages;
use atmls_loadgen::target::{Account, GroupMailbox};
use atmls_loadgen::{LoadgenError, Target};
use tokio::task::JoinHandle;

const START_WAIT: Duration = Duration::from_secs(60);

/// The source address of honest principals.
pub(crate) const HONEST: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));

/// The source address of attacker number `n` (`127.0.66.n`): on loopback every `127/8`
/// address is this machine, so each attacker is a different source to the server.
pub(crate) fn attacker(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 66, n))
}

/// `atmls serve` over a fresh data directory, logging everything (`debug`, JSON lines)
/// to a buffer the test reads at the end. Killed on drop.
pub(crate) struct Serve {
    child: Child,
    pub(crate) url: String,
    logs: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Serve {
    pub(crate) fn start() -> Self {
        Self::start_with(&[])
    }

    /// With extra `atmls serve` arguments.
    pub(crate) fn start_with(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_atmls"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("ATMLS_DATA_DIR", dir.path().join("server"))
            .env("ATMLS_LOG", "debug")
            .env("ATMLS_LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn atmls serve");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + START_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!("atmls serve did not start: {:#?}", logs.lock().unwrap());
            };
            if line.contains("listening")
                && let Some(at) = line.find("http://")
            {
                let url = line[at..].split_whitespace().next().unwrap();
                let url = url.trim_end_matches('/').to_owned();
                std::thread::spawn(move || while rx.recv().is_ok() {});
                return Self {
                    child,
                    url,
                    logs,
                    _dir: dir,
                };
            }
        }
    }

    /// The server's resident memory in KiB (`VmRSS`).
    pub(crate) fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("server process status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }

    /// Every log line so far.
    pub(crate) fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Asserts that no log line contains any of `secrets` (DIDs, mailbox ids, tokens,
    /// payloads: the privacy promise holds in logs too), and that the logs are not empty
    /// (so the check can fail).
    pub(crate) fn assert_logs_keep(&self, secrets: &[String]) {
        let logs = self.logs();
        assert!(
            logs.iter().any(|l| l.contains("\"request\"")),
            "the server logged no request lines at debug: {logs:#?}"
        );
        for secret in secrets.iter().filter(|s| s.len() >= 8) {
            if let Some(line) = logs.iter().find(|l| l.contains(secret.as_str())) {
                panic!("a log line contains {secret:?}: {line}");
            }
        }
    }

    /// The server's `/metrics` text.
    pub(crate) async fn metrics(&self, target: &Target) -> String {
        let mut conn = target.conn().await.expect("connect");
        let (_, body) = conn.get("/metrics", None).await.expect("metrics");
        String::from_utf8_lossy(&body).into_owned()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One principal: an account with a group mailbox, connected from `source`.
pub(crate) struct Principal {
    pub(crate) account: Account,
    pub(crate) mailbox: GroupMailbox,
    pub(crate) conn: Conn,
}

impl Principal {
    pub(crate) async fn new(target: &Target, source: IpAddr) -> Self {
        let account = target.account().await.expect("account");
        let mut conn = Conn::connect_from(target.addr(), target.host(), Some(source))
            .await
            .expect("connect");
        let mailbox = target
            .group_mailbox(&mut conn, &account)
            .await
            .expect("group mailbox");
        Self {
            account,
            mailbox,
            conn,
        }
    }

    /// The strings of this principal that must never appear in a log.
    pub(crate) fn secrets(&self) -> Vec<String> {
        vec![self.account.did().to_owned(), self.mailbox.text.clone()]
    }
}

/// Signs and sends one `message` batch of `payloads` to `m` over `conn`.
pub(crate) async fn send(
    target: &Target,
    conn: &mut Conn,
    m: &GroupMailbox,
    payloads: &[Vec<u8>],
) -> Result<u64, LoadgenError> {
    let body = send_body(&m.id, payloads);
    let auth = target
        .token(&m.key, DsMethod::SendEnvelopes, &m.id, &body)
        .authorization_header();
    conn.send_envelopes(body, &auth).await.map(|r| r.first_seq)
}

/// What the honest principals saw while an attack ran.
pub(crate) struct HonestReport {
    /// Requests sent.
    pub(crate) sent: u64,
    /// Every failed honest request, with what it said.
    pub(crate) failures: Vec<String>,
}

/// One honest principal's run: its mailbox, the (seq, payload) of every acknowledged
/// envelope, requests sent, failures.
type HonestRun = (GroupMailbox, Vec<(u64, Vec<u8>)>, u64, Vec<String>);

/// Honest principals sending beside an attack: each its own account, mailbox and
/// connection from [`HONEST`], one small batch every few milliseconds, until stopped.
pub(crate) struct Honest {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<HonestRun>>,
}

impl Honest {
    pub(crate) async fn start(target: &Arc<Target>, principals: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for _ in 0..principals {
            let p = Principal::new(target, HONEST).await;
            let target = target.clone();
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let Principal {
                    mailbox, mut conn, ..
                } = p;
                let mut acked = Vec::new();
                let mut sent = 0;
                let mut failures = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let payload: Vec<u8> = (0..48).map(|_| rand::random()).collect();
                    sent += 1;
                    match send(&target, &mut conn, &mailbox, std::slice::from_ref(&payload)).await {
                        Ok(seq) => acked.push((seq, payload)),
                        Err(e) => failures.push(e.to_string()),
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                (mailbox, acked, sent, failures)
            }));
        }
        Self { stop, tasks }
    }

    /// Stops the honest principals, reads every mailbox back and checks that every
    /// acknowledged envelope is there, in its place, with its bytes.
    pub(crate) async fn finish(self, target: &Target) -> HonestReport {
        self.stop.store(true, Ordering::Relaxed);
        let mut report = HonestReport {
            sent: 0,
            failures: Vec::new(),
        };
        for task in self.tasks {
            let (mailbox, acked, sent, failures) = task.await.expect("honest task");
            report.sent += sent;
            report.failures.extend(failures);
            let mut conn = target.conn().await.expect("connect");
            let mut stored = std::collections::BTreeMap::new();
            read_pages(target, &mut conn, &mailbox, 1000, |seq, payload| {
                stored.insert(seq, payload);
                Ok(())
            })
            .await
            .expect("read back");
            for (seq, payload) in &acked {
                assert_eq!(
                    stored.get(seq),
                    Some(payload),
                    "acknowledged envelope {seq} lost or changed"
                );
            }
            let seqs: Vec<u64> = stored.keys().copied().collect();
            let gap_free: Vec<u64> = (1..=seqs.len() as u64).collect();
            assert_eq!(seqs, gap_free, "the mailbox has a gap");
        }
        report
    }
}

/// Asserts the verdict every attack shares: the honest principals sent, none failed.
pub(crate) fn assert_unharmed(report: &HonestReport, attack: &str) {
    assert!(
        report.sent >= 4,
        "{attack}: the honest principals hardly sent ({}): the test proves nothing",
        report.sent
    );
    assert!(
        report.failures.is_empty(),
        "{attack}: {} of {} honest requests failed, e.g. {:?}",
        report.failures.len(),
        report.sent,
        &report.failures[..report.failures.len().min(3)]
    );
}

/// Whether an error is a typed refusal (4xx with an XRPC error body), never a 5xx or a
/// dropped connection.
pub(crate) fn typed_refusal(e: &LoadgenError) -> Option<(u16, String)> {
    match e {
        LoadgenError::Status { status, body, .. } if (400..500).contains(status) => {
            let v: serde_json::Value = serde_json::from_str(body).ok()?;
            Some((*status, v["error"].as_str()?.to_owned()))
        }
        _ => None,
    }
}

/// A deadline `secs` from now, for attack loops.
pub(crate) fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}
