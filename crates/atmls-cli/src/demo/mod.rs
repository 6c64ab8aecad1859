//! `atmls demo`: from nothing to a working encrypted group conversation, every step
//! checked. Starts the embedded services in-process in a temporary directory (or uses
//! `--server`), creates alice, bob (two devices) and carol through the PDS over HTTP,
//! verifies KeyPackages against the accounts' repos, creates a group, exchanges
//! messages, adds and removes a member, and shows what the DS stored, read from its own
//! database. Exit code 0 only if every check held.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use atmls_client::at_rest::Passphrase;
use atmls_client::transport::Pds as _;
use atmls_client::transport::http::{HttpDs, HttpPds};
use atmls_client::{Committed, Device, DeviceConfig, Did, Event, GroupId, Storage, content};
use atmls_ds::MailboxId;
use atmls_identity::DidResolver;
use atmls_server::embedded::{Embedded, EmbeddedConfig};
use clap::Args;

mod ds_view;
mod recovery;
mod rotation;
mod transcript;
mod vanish;

use ds_view::{DsView, Snapshot};
use transcript::{Failed, Transcript, say};

type Dev = Device<HttpPds, HttpDs>;

/// How long one network step may take before the demo gives up.
const STEP: Duration = Duration::from_secs(30);
const PASSWORD: &str = "demo password";

/// Options of `atmls demo`; each can also be set by its environment variable.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  atmls demo                                     everything in-process, in a temporary directory
  atmls demo --server http://127.0.0.1:2583 --ds-database ~/.local/share/atmls/ds.sqlite
                                                 against a running `atmls serve`")]
pub(crate) struct DemoArgs {
    /// Use this running host (PDS + PLC + DS, e.g. `atmls serve`) instead of starting
    /// one in-process; accounts get a random suffix.
    #[arg(long, env = "ATMLS_DEMO_SERVER")]
    server: Option<String>,
    /// The PLC directory [default: the server's URL on loopback, else https://plc.directory].
    #[arg(long, env = "ATMLS_PLC")]
    plc: Option<String>,
    /// The DS's database file, to show what the DS stored [default: the in-process DS's;
    /// with --server none, and the DS view is skipped].
    #[arg(long, env = "ATMLS_DS_DATABASE")]
    ds_database: Option<PathBuf>,
    /// Keep the services' and devices' files here instead of a temporary directory.
    #[arg(long, env = "ATMLS_DEMO_DIR")]
    dir: Option<PathBuf>,
}

pub(crate) fn run(args: DemoArgs) -> ExitCode {
    let runtime = match crate::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut tr = Transcript::new();
    say("atmls demo — an end-to-end encrypted group conversation over AT Protocol, on MLS");
    match runtime.block_on(demo(args, &mut tr)) {
        Ok(()) => {
            say(&format!(
                "\nall {} checks passed in {:.2} s",
                tr.checks(),
                tr.elapsed()
            ));
            ExitCode::SUCCESS
        }
        Err(Failed(why)) => {
            say(&format!(
                "\ndemo FAILED after {} passed checks ({:.2} s): {why}",
                tr.checks(),
                tr.elapsed()
            ));
            ExitCode::FAILURE
        }
    }
}

/// One person's device in the demo.
struct Person {
    label: String,
    handle: String,
    dev: Dev,
}

/// Where the services are.
struct Net {
    url: String,
    /// Learnt from the first account's PDS when the services are not in-process.
    ds_did: Option<Did>,
    resolver: Arc<dyn DidResolver>,
    suffix: String,
    dir: PathBuf,
    /// The devices' clock: the system's, which the disappearing-message step moves ahead.
    clock: Arc<vanish::DemoClock>,
}

impl Net {
    async fn person(&mut self, name: &str, label: &str, login: bool) -> Result<Person, Failed> {
        let handle = format!("{name}{}.test", self.suffix);
        let pds = if login {
            HttpPds::login(&self.url, &handle, PASSWORD, self.resolver.clone()).await
        } else {
            HttpPds::create_account(
                &self.url,
                &handle,
                &format!("{name}{}@example.com", self.suffix),
                PASSWORD,
                self.resolver.clone(),
            )
            .await
        }
        .map_err(|e| Failed(format!("{label}: {e}")))?;
        let ds_did = match &self.ds_did {
            Some(d) => d.clone(),
            None => {
                let d = describe_ds(&pds).await?;
                say(&format!("   the host describes its delivery service: {d}"));
                self.ds_did = Some(d.clone());
                d
            }
        };
        let path = self.dir.join(format!("{}.sqlite", label.replace(' ', "-")));
        let key = demo_passphrase();
        let dev = step(Device::create(
            Storage::File(&path, &key),
            pds,
            HttpDs::new(self.resolver.clone()),
            ds_did,
            DeviceConfig::default()
                .with_suite_policy(atmls_client::suite::SuitePolicy::Prefer)
                .with_own_device_check_interval(Duration::ZERO)
                .with_clock(self.clock.clone()),
        ))
        .await
        .map_err(|e| Failed(format!("{label}: {}", e.0)))?;
        Ok(Person {
            label: label.to_owned(),
            handle,
            dev,
        })
    }
}

/// Bounds one network step in time.
async fn step<T, E: std::fmt::Display>(f: impl Future<Output = Result<T, E>>) -> Result<T, Failed> {
    match tokio::time::timeout(STEP, f).await {
        Ok(r) => r.map_err(|e| Failed(e.to_string())),
        Err(_) => Err(Failed(format!("no answer within {} s", STEP.as_secs()))),
    }
}

async fn demo(args: DemoArgs, tr: &mut Transcript) -> Result<(), Failed> {
    let temp = match &args.dir {
        Some(_) => None,
        None => Some(tempfile::tempdir()?),
    };
    let dir = match (&args.dir, &temp) {
        (Some(d), _) => d.clone(),
        (None, Some(t)) => t.path().to_owned(),
        (None, None) => unreachable!("a temporary directory exists when no --dir is given"),
    };
    std::fs::create_dir_all(dir.join("devices"))?;
    tr.section("services");
    let (embedded, net, ds_db) = match &args.server {
        None => {
            let e = Embedded::start(
                EmbeddedConfig::new(dir.join("server")).with_development_loopback(true),
            )
            .await?;
            tr.info(format!(
                "started in-process on {}: PDS host (XRPC), PLC directory, delivery service",
                e.url()
            ));
            tr.info(format!("data directory {}", dir.display()));
            tr.info(format!("delivery service DID {}", e.ds_did()));
            let net = net_for(
                e.url(),
                args.plc.as_deref(),
                Some(e.ds_did().clone()),
                "",
                &dir,
            );
            let db = args.ds_database.clone().or_else(|| e.ds_database());
            (Some(e), net, db)
        }
        Some(url) => {
            let url = url.trim_end_matches('/');
            let suffix = format!("-{}", &super::client::hex(&rand_bytes())[..6]);
            tr.info(format!("using the services at {url}"));
            let net = net_for(url, args.plc.as_deref(), None, &suffix, &dir);
            (None, net, args.ds_database.clone())
        }
    };
    let view = ds_db.as_deref().map(DsView::new);
    let result = conversation(net, view.as_ref(), ds_db.as_deref(), tr).await;
    if let Some(e) = embedded {
        e.shutdown().await?;
    }
    result
}

fn rand_bytes() -> [u8; 4] {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (t.subsec_nanos() ^ std::process::id()).to_be_bytes()
}

fn net_for(url: &str, plc: Option<&str>, ds_did: Option<Did>, suffix: &str, dir: &Path) -> Net {
    Net {
        url: url.to_owned(),
        ds_did,
        resolver: crate::client::profile::resolver(
            &plc.map_or_else(|| crate::client::profile::default_plc(url), str::to_owned),
        ),
        suffix: suffix.to_owned(),
        dir: dir.join("devices"),
        clock: Arc::new(vanish::DemoClock::default()),
    }
}

/// The DS DID the account's host describes (`chat.mls.ds.describeServer`).
async fn describe_ds(pds: &HttpPds) -> Result<Did, Failed> {
    let v = step(pds.query("chat.mls.ds.describeServer", &[])).await?;
    v["did"]
        .as_str()
        .and_then(|d| Did::new(d).ok())
        .ok_or_else(|| {
            Failed(format!(
                "{} does not describe a delivery service",
                pds.base()
            ))
        })
}

async fn conversation(
    mut net: Net,
    view: Option<&DsView>,
    ds_db: Option<&Path>,
    tr: &mut Transcript,
) -> Result<(), Failed> {
    let mut ds = DsWatch::new(view, tr)?;

    tr.section("accounts and devices (over the PDS's XRPC API)");
    let alice = net.person("alice", "alice", false).await?;
    let bob = net.person("bob", "bob laptop", false).await?;
    let phone = net.person("bob", "bob phone", true).await?;
    let carol = net.person("carol", "carol", false).await?;
    for p in [&alice, &bob, &phone, &carol] {
        let records = step(p.dev.pds().list_records(p.dev.did(), "chat.mls.keyPackage")).await?;
        let mine = records
            .iter()
            .filter(|r| r.value["deviceId"].as_str() == Some(p.dev.device_id()))
            .count();
        let decl = step(
            p.dev
                .pds()
                .list_records(p.dev.did(), "chat.mls.declaration"),
        )
        .await?;
        tr.check(
            mine >= 2 && decl.iter().any(|r| r.rkey == "self"),
            format!(
                "{:<10} {} device {}: declaration + {mine} KeyPackages in its repo",
                p.label,
                p.dev.did(),
                p.dev.device_id()
            ),
            || format!("{mine} KeyPackages, {} declarations", decl.len()),
        )?;
    }
    tr.equal(
        bob.dev.did(),
        phone.dev.did(),
        "bob's two devices are one account",
    )?;
    let mut labels = vec![(alice.dev.inbox().await.1, "alice's inbox".to_owned())];
    for p in [&bob, &phone, &carol] {
        labels.push((p.dev.inbox().await.1, format!("{}'s inbox", p.label)));
    }
    ds.show(tr, &labels)?;

    tr.section("alice verifies bob's and carol's KeyPackages (record proofs from their repos)");
    for (who, devices) in [(&bob, 2usize), (&carol, 1)] {
        let did = who.dev.did().clone();
        let doc = step(alice.dev.pds().resolve(&did)).await?;
        let key = doc.atproto_key()?.to_did_key();
        tr.info(format!(
            "{} resolves to a DID document whose #atproto key is {key}",
            who.handle
        ));
        let kps = step(alice.dev.key_packages_of(&did)).await?;
        tr.equal(
            kps.len(),
            devices,
            format!("{}: one verified KeyPackage per device", who.handle),
        )?;
        for kp in &kps {
            tr.check(
                kp.did == did && Some(&kp.inbox_ds) == net.ds_did.as_ref(),
                format!(
                    "device {}: record chat.mls.keyPackage/{} proven by a commit at rev {} signed by {key}; credential = {}, inbox on {}",
                    kp.device_id, kp.rkey, kp.rev, did, kp.inbox_ds
                ),
                || format!("KeyPackage of {} with inbox DS {}", kp.did, kp.inbox_ds),
            )?;
        }
    }

    tr.section("alice creates a group and adds bob (both devices)");
    let g = step(alice.dev.create_group("demo")).await?;
    let info = step(alice.dev.group(&g)).await?;
    let mailbox = MailboxId::from_bytes(info.data.mailbox);
    labels.push((mailbox, "group \"demo\"".to_owned()));
    let e0 = info.epoch;
    tr.check(
        info.members.len() == 1 && info.data.is_admin(alice.dev.did().as_str()),
        format!(
            "group {g} created at epoch {e0}, alice its only member and admin, mailbox {mailbox} on {}",
            info.data.ds
        ),
        || format!("{} members, admins {:?}", info.members.len(), info.data.admins),
    )?;
    let suite = atmls_client::suite::describe_code(info.ciphersuite);
    tr.check(
        info.ciphersuite == u16::from(atmls_client::suite::XWING),
        format!(
            "ciphersuite {suite}: hybrid post-quantum (ML-KEM-768 + X25519), every device publishes X-Wing KeyPackages"
        ),
        || format!("the group is in {suite}"),
    )?;
    committed(
        tr,
        step(alice.dev.add_members(&g, &[bob.dev.did().clone()])).await?,
        "add bob",
    )?;
    for p in [&bob, &phone] {
        let ev = sync(p).await?;
        tr.equal(
            Event::joined(&ev),
            vec![g.clone()],
            format!(
                "{} joined from its welcome (sealed to its KeyPackage)",
                p.label
            ),
        )?;
    }
    same_epoch(tr, &g, &[&alice, &bob, &phone], e0 + 1).await?;
    ds.show(tr, &labels)?;

    tr.section("messages");
    let mut sent = Vec::new();
    say_and_send(&alice, &g, "hello bob", &mut sent).await?;
    for p in [&bob, &phone] {
        expect_texts(tr, p, &["hello bob"]).await?;
    }
    say_and_send(&phone, &g, "hi alice, from my phone", &mut sent).await?;
    expect_texts(tr, &alice, &["hi alice, from my phone"]).await?;
    expect_texts(tr, &bob, &["hi alice, from my phone"]).await?;
    ds.show(tr, &labels)?;

    tr.section("alice adds carol, who sees only what follows");
    committed(
        tr,
        step(alice.dev.add_members(&g, &[carol.dev.did().clone()])).await?,
        "add carol",
    )?;
    let ev = sync(&carol).await?;
    tr.equal(
        Event::joined(&ev),
        vec![g.clone()],
        "carol joined from her welcome",
    )?;
    tr.equal(
        Event::texts(&ev),
        Vec::<String>::new(),
        "carol cannot read the messages from before she joined",
    )?;
    for p in [&bob, &phone] {
        sync(p).await?;
    }
    say_and_send(&carol, &g, "thanks for having me", &mut sent).await?;
    for p in [&alice, &bob, &phone] {
        expect_texts(tr, p, &["thanks for having me"]).await?;
    }
    same_epoch(tr, &g, &[&alice, &bob, &phone, &carol], e0 + 2).await?;
    ds.show(tr, &labels)?;

    tr.section("alice removes carol");
    committed(
        tr,
        step(alice.dev.remove_members(&g, &[carol.dev.did().clone()])).await?,
        "remove carol",
    )?;
    let ev = sync(&carol).await?;
    tr.check(
        ev.iter()
            .any(|e| matches!(e, Event::Removed { group } if *group == g)),
        "carol learns she was removed",
        || format!("carol's events: {ev:?}"),
    )?;
    let refused = carol.dev.send(&g, content::text("am I still here?")).await;
    tr.check(
        matches!(refused, Err(atmls_client::Error::NotMember)),
        "carol can no longer send (NotMember)",
        || format!("{refused:?}"),
    )?;
    for p in [&bob, &phone] {
        sync(p).await?;
    }
    say_and_send(&alice, &g, "just the two of us again", &mut sent).await?;
    for p in [&bob, &phone] {
        expect_texts(tr, p, &["just the two of us again"]).await?;
    }
    let carol_later = sync(&carol).await?;
    tr.equal(
        Event::texts(&carol_later),
        Vec::<String>::new(),
        "carol cannot read what is sent after her removal",
    )?;
    same_epoch(tr, &g, &[&alice, &bob, &phone], e0 + 3).await?;
    let members = step(alice.dev.group(&g)).await?.member_dids();
    tr.equal(
        members.len(),
        2,
        "the group has two accounts (alice; bob with two devices)",
    )?;
    ds.show(tr, &labels)?;
    at_rest(tr, &net.dir, &g, &sent)?;

    ds.final_checks(tr, &labels, &mailbox, e0, &sent)?;
    vanish::disappearing_message(tr, &net.clock, ds_db, &alice, &bob, &phone, &g, &mailbox).await?;
    rotation::show(tr, &alice, &bob, &phone, &g).await?;
    recovery::run(tr, &net, &g, &alice, &bob, phone).await
}

/// The devices' passphrase: `ATMLS_PASSPHRASE`, else a fixed one (the demo's databases
/// are thrown away); the default key derivation cost (argon2id, 64 MiB).
fn demo_passphrase() -> Passphrase {
    match std::env::var(crate::client::passphrase::ENV) {
        Ok(p) if !p.is_empty() => Passphrase::new(p),
        _ => Passphrase::new("demo passphrase"),
    }
}

/// Every device database is encrypted at rest: no SQLite header, no group id, no text.
fn at_rest(tr: &mut Transcript, dir: &Path, g: &GroupId, sent: &[String]) -> Result<(), Failed> {
    tr.section("device databases at rest");
    let mut files = 0;
    let mut leaks = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.display().to_string();
        if !(name.ends_with(".sqlite") || name.ends_with(".sqlite-wal")) {
            continue;
        }
        files += 1;
        let bytes = std::fs::read(&path)?;
        if ds_view::contains(&bytes, b"SQLite format 3") {
            leaks.push(format!("{name} is a plain SQLite file"));
        }
        if ds_view::contains(&bytes, g.as_bytes()) {
            leaks.push(format!("{name} holds the group id"));
        }
        for text in sent {
            if ds_view::contains(&bytes, text.as_bytes()) {
                leaks.push(format!("{name} holds {text:?}"));
            }
        }
    }
    tr.check(
        files >= 4 && leaks.is_empty(),
        format!(
            "the {files} device database files are encrypted (SQLCipher, key from a passphrase through argon2id): no SQLite header, no group id, none of the {} texts",
            sent.len()
        ),
        || format!("{files} files; {}", leaks.join("; ")),
    )
}

async fn say_and_send(
    p: &Person,
    g: &GroupId,
    text: &str,
    sent: &mut Vec<String>,
) -> Result<(), Failed> {
    say(&format!("   {} says {text:?}", p.label));
    step(p.dev.send(g, content::text(text))).await?;
    sent.push(text.to_owned());
    Ok(())
}

async fn sync(p: &Person) -> Result<Vec<Event>, Failed> {
    step(p.dev.sync())
        .await
        .map_err(|e| Failed(format!("{}: {}", p.label, e.0)))
}

async fn expect_texts(tr: &mut Transcript, p: &Person, want: &[&str]) -> Result<(), Failed> {
    let got = Event::texts(&sync(p).await?);
    tr.equal(
        got.iter().map(String::as_str).collect::<Vec<_>>(),
        want.to_vec(),
        format!("{} decrypted {want:?}", p.label),
    )
}

fn committed(tr: &mut Transcript, c: Committed, what: &str) -> Result<(), Failed> {
    match c {
        Committed::Accepted { epoch, attempts, .. } => tr.check(
            true,
            format!("{what}: commit on epoch {epoch} accepted and sequenced by the DS ({attempts} attempt(s))"),
            String::new,
        ),
        other => tr.check(false, what, || format!("{other:?}")),
    }
}

/// Every device is at `epoch` with the same epoch authenticator.
async fn same_epoch(
    tr: &mut Transcript,
    g: &GroupId,
    people: &[&Person],
    epoch: u64,
) -> Result<(), Failed> {
    let mut seen = Vec::new();
    for p in people {
        let s = step(p.dev.group(g)).await?;
        seen.push((p.label.as_str(), s.epoch, s.epoch_authenticator));
    }
    let first = seen[0].2.clone();
    let names: Vec<&str> = seen.iter().map(|s| s.0).collect();
    tr.check(
        seen.iter().all(|s| s.1 == epoch && s.2 == first),
        format!(
            "epoch {epoch}: epoch authenticator {}… equal at {}",
            &crate::client::hex(&first)[..16.min(first.len() * 2)],
            names.join(", ")
        ),
        || format!("{:?}", seen.iter().map(|s| (s.0, s.1)).collect::<Vec<_>>()),
    )
}

/// Shows what the DS stored after each step.
struct DsWatch<'a> {
    view: Option<&'a DsView>,
    last: Snapshot,
}

impl<'a> DsWatch<'a> {
    fn new(view: Option<&'a DsView>, tr: &Transcript) -> Result<Self, Failed> {
        match view {
            Some(v) => tr.info(format!(
                "what the DS stores is read from its own database, {} (labels come from the clients; the DS sees only ids)",
                v.path().display()
            )),
            None => tr.info("the DS's database is not on this machine: the DS view is skipped (see --ds-database)"),
        }
        Ok(Self {
            view,
            last: Snapshot::default(),
        })
    }

    fn show(&mut self, tr: &Transcript, labels: &[(MailboxId, String)]) -> Result<(), Failed> {
        let Some(view) = self.view else { return Ok(()) };
        let now = view.snapshot()?;
        for c in now.since(&self.last) {
            let label = label(labels, &c.mailbox);
            let mut what: Vec<String> = Vec::new();
            for kind in ["commit", "welcome", "message"] {
                let sizes: Vec<String> = c
                    .appended
                    .iter()
                    .filter(|a| a.1 == kind)
                    .map(|a| format!("{} B", a.2))
                    .collect();
                if !sizes.is_empty() {
                    what.push(format!("{} {kind}(s) [{}]", sizes.len(), sizes.join(", ")));
                }
            }
            if c.gone > 0 {
                what.push(format!(
                    "{} already fetched and deleted by its owner",
                    c.gone
                ));
            }
            let epoch = c.epoch.map(|e| format!(", epoch {e}")).unwrap_or_default();
            tr.info(format!(
                "DS: {} mailbox {}{} ({label}){epoch}: {}{}",
                c.kind,
                &c.mailbox,
                if c.new { " new" } else { "" },
                if what.is_empty() {
                    "no envelopes".to_owned()
                } else {
                    what.join("; ")
                },
                format_args!(", head {}→{}", c.head.0, c.head.1),
            ));
        }
        self.last = now;
        Ok(())
    }

    /// The group mailbox holds exactly what was sent, and no payload holds any plaintext.
    fn final_checks(
        &mut self,
        tr: &mut Transcript,
        labels: &[(MailboxId, String)],
        group: &MailboxId,
        e0: u64,
        sent: &[String],
    ) -> Result<(), Failed> {
        let Some(view) = self.view else { return Ok(()) };
        tr.section("what the delivery service could see");
        let snap = view.snapshot()?;
        for (id, m) in &snap.mailboxes {
            let bytes: usize = m.envelopes.values().map(|e| e.payload.len()).sum();
            tr.info(format!(
                "{} {id} ({}): head {}, {} envelope(s) stored, {bytes} B{}",
                m.kind,
                label(labels, id),
                m.head,
                m.envelopes.len(),
                m.epoch.map(|e| format!(", epoch {e}")).unwrap_or_default()
            ));
        }
        let g = snap
            .mailboxes
            .get(&group.to_string())
            .ok_or_else(|| Failed(format!("the DS has no mailbox {group}")))?;
        let messages = g.envelopes.values().filter(|e| e.kind == "message").count();
        tr.equal(
            messages,
            sent.len(),
            "group mailbox: one envelope per message sent",
        )?;
        let commit_epochs: Vec<Option<u64>> = g
            .envelopes
            .values()
            .filter(|e| e.kind == "commit" && e.epoch >= Some(e0))
            .map(|e| e.epoch)
            .collect();
        tr.equal(
            commit_epochs,
            vec![Some(e0), Some(e0 + 1), Some(e0 + 2)],
            format!("the DS sequenced the three commits (add bob, add carol, remove carol) on epochs {e0}, {}, {} in order", e0 + 1, e0 + 2),
        )?;
        tr.equal(
            g.epoch,
            Some(e0 + 3),
            format!("the DS's mailbox is at epoch {}, as the members", e0 + 3),
        )?;
        let mut leaks = Vec::new();
        for (id, seq, e) in snap.payloads() {
            for text in sent {
                if ds_view::contains(&e.payload, text.as_bytes()) {
                    leaks.push(format!("{id}#{seq} holds {text:?}"));
                }
            }
        }
        let stored = snap.payloads().count();
        tr.check(
            leaks.is_empty(),
            format!(
                "none of the {stored} stored payloads contains any of the {} message texts",
                sent.len()
            ),
            || leaks.join("; "),
        )
    }
}

fn label(labels: &[(MailboxId, String)], id: &str) -> String {
    labels
        .iter()
        .find(|(m, _)| m.to_string() == id)
        .map_or_else(|| "unknown to the demo".to_owned(), |(_, l)| l.clone())
}
