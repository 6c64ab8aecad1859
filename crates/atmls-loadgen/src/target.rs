//! The delivery service under load: started in this process over a SQLite file in a
//! temporary directory (with a dev PLC directory beside it for service auth), or a
//! running `atmls serve` on loopback (`--url`).

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use atmls_crypto::{Algorithm, SigningKey as AccountKey};
use atmls_ds_proto::codec::client as codec;
use atmls_ds_proto::{DsMethod, MailboxId, MailboxKind, RequestToken, Timestamp};
use atmls_ds_xrpc::{Clock as _, SystemClock};
use atmls_identity::plc::GenesisBuilder;
use atmls_identity::service_auth::{Claims, issue};
use atmls_server::embedded::DsShares;
use atmls_testkit::server::{DS_ONLY_DID, TestServer};
use atmls_xrpc::{ServerConfig, SubscriptionConfig};
use bytes::Bytes;
use ed25519_dalek::SigningKey;

use crate::LoadgenError;
use crate::client::{Conn, bad_answer};
use crate::postgres::{Database, Deployment};

/// An account registered in the PLC directory the DS resolves from.
#[derive(Debug)]
pub struct Account {
    did: String,
    key: AccountKey,
}

impl Account {
    /// The account's DID.
    pub fn did(&self) -> &str {
        &self.did
    }
}

/// A group mailbox and its epoch-0 key.
#[derive(Debug, Clone)]
pub struct GroupMailbox {
    /// The id.
    pub id: MailboxId,
    /// The id's text form.
    pub text: String,
    /// The key every member would derive; signs every request.
    pub key: SigningKey,
}

/// An in-process delivery service, stopped on [`Target::close`] or drop: on SQLite
/// (started by `atmls-testkit`, with its dev PLC directory), or on PostgreSQL.
enum Local {
    Sqlite {
        server: Box<TestServer>,
        _dir: tempfile::TempDir,
    },
    Postgres(Deployment),
}

/// Where the load goes.
pub struct Target {
    /// One listener per DS process (one unless on PostgreSQL with several).
    addrs: Vec<SocketAddr>,
    host: String,
    plc_addr: SocketAddr,
    ds_did: String,
    request_max_age_ms: u64,
    /// Added to the time in mailbox tokens (see [`Target::connect`]).
    sign_offset_ms: AtomicU64,
    local: Option<Local>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("addrs", &self.addrs)
            .field("ds_did", &self.ds_did)
            .field("in_process", &self.local.is_some())
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Starts a DS in this process on 127.0.0.1:0 over a new SQLite file in a temporary
    /// directory (`synchronous = FULL`, as in production), with a dev PLC directory on
    /// another loopback port. The startup replay guard is off: the database is new, so no
    /// earlier token can exist. Call inside a multi-threaded tokio runtime.
    pub async fn start_local() -> Result<Self, LoadgenError> {
        let start = |e: &dyn std::fmt::Display| LoadgenError::Start(e.to_string());
        let dir = tempfile::tempdir()?;
        let core = load_core();
        let request_max_age_ms = millis(core.request_max_age());
        let server = TestServer::builder()
            .ds_only()
            .system_clock()
            .data_dir(dir.path())
            .core(core)
            .unlimited_shares()
            .server(load_server())
            .try_start()
            .await
            .map_err(|e| start(&e))?;
        Ok(Self {
            addrs: vec![server.addr()],
            host: server.addr().to_string(),
            plc_addr: server.plc().addr(),
            ds_did: server.ds_did().to_string(),
            request_max_age_ms,
            sign_offset_ms: AtomicU64::new(0),
            local: Some(Local::Sqlite {
                server: Box::new(server),
                _dir: dir,
            }),
        })
    }

    /// Starts `db.processes()` DS processes in this process over a new schema of the
    /// PostgreSQL database `db` ([`crate::postgres`]: each as `atmls serve --database`
    /// starts its DS, on its own loopback listener), with the settings of
    /// [`Target::start_local`]. Scenarios spread their connections over the processes
    /// ([`Target::addr_of`]), as a load balancer would.
    pub async fn start_postgres(db: &Database) -> Result<Self, LoadgenError> {
        let core = load_core();
        let request_max_age_ms = millis(core.request_max_age());
        let deployment = Deployment::start(db, &core, &unlimited_shares(), &load_server()).await?;
        let addrs = deployment.addrs();
        let first = addrs
            .first()
            .copied()
            .ok_or_else(|| LoadgenError::Start("no DS process".into()))?;
        Ok(Self {
            addrs,
            host: first.to_string(),
            plc_addr: deployment.plc_addr(),
            ds_did: DS_ONLY_DID.to_owned(),
            request_max_age_ms,
            sign_offset_ms: AtomicU64::new(0),
            local: Some(Local::Postgres(deployment)),
        })
    }

    /// [`Target::start_postgres`] with `Some` database, else [`Target::start_local`].
    pub async fn start(db: Option<&Database>) -> Result<Self, LoadgenError> {
        match db {
            Some(db) => Self::start_postgres(db).await,
            None => Self::start_local().await,
        }
    }

    /// A running `atmls serve` at `url` (`http://127.0.0.1:<port>`; loopback only), whose
    /// PLC directory is on the same listener. If the server started less than its request
    /// age ago, its startup replay guard refuses tokens dated before then; the tokens of
    /// this run are then dated up to the request age ahead (which the spec allows and the
    /// guard accepts: such a token cannot have been used before the restart).
    /// `plc_url` is where accounts are registered when the PLC directory is elsewhere
    /// (e.g. `atmls-loadgen serve`), also loopback only.
    pub async fn connect(url: &str, plc_url: Option<&str>) -> Result<Self, LoadgenError> {
        let (addr, authority) = loopback(url)?;
        let plc_addr = match plc_url {
            Some(p) => loopback(p)?.0,
            None => addr,
        };
        let mut conn = Conn::connect(addr, &authority).await?;
        let (status, body) = conn.get("/xrpc/chat.mls.ds.describeServer", None).await?;
        if status != 200 {
            return Err(LoadgenError::status(
                "describeServer",
                status.as_u16(),
                &body,
            ));
        }
        let d =
            codec::describe_server_output(&body).map_err(|e| bad_answer("describeServer", e))?;
        Ok(Self {
            addrs: vec![addr],
            host: authority,
            plc_addr,
            ds_did: d.did,
            request_max_age_ms: d.limits.request_max_age_seconds.saturating_mul(1000),
            sign_offset_ms: AtomicU64::new(0),
            local: None,
        })
    }

    /// The PLC directory's address.
    pub fn plc_addr(&self) -> SocketAddr {
        self.plc_addr
    }

    /// The DS's socket address (the first process's).
    pub fn addr(&self) -> SocketAddr {
        self.addr_of(0)
    }

    /// DS processes serving this target.
    pub fn processes(&self) -> usize {
        self.addrs.len()
    }

    /// The address of process `i % processes()`: connection `i` goes there, as a load
    /// balancer spreads connections.
    pub fn addr_of(&self, i: usize) -> SocketAddr {
        self.addrs[i % self.addrs.len()]
    }

    /// The `Host` header value for process `i % processes()`.
    pub fn host_of(&self, i: usize) -> String {
        if self.addrs.len() == 1 {
            self.host.clone()
        } else {
            self.addr_of(i).to_string()
        }
    }

    /// A new connection to process `i % processes()`.
    pub async fn conn_to(&self, i: usize) -> Result<Conn, LoadgenError> {
        Conn::connect(self.addr_of(i), &self.host_of(i)).await
    }

    /// The `Host` header value.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the DS runs in this process (its RSS is this process's).
    pub fn in_process(&self) -> bool {
        self.local.is_some()
    }

    /// A new connection to the DS.
    pub async fn conn(&self) -> Result<Conn, LoadgenError> {
        self.conn_to(0).await
    }

    /// The time signed into mailbox tokens.
    pub fn now(&self) -> Timestamp {
        SystemClock.now().saturating_add(Duration::from_millis(
            self.sign_offset_ms.load(Ordering::Relaxed),
        ))
    }

    /// A mailbox token for `method` on `mailbox` over `content`, signed now with a fresh
    /// nonce.
    pub fn token(
        &self,
        key: &SigningKey,
        method: DsMethod,
        mailbox: &MailboxId,
        content: &[u8],
    ) -> RequestToken {
        RequestToken::sign(key, method, mailbox, self.now(), rand::random(), content)
    }

    /// Registers a new did:plc (ES256K) in the PLC directory the DS resolves from.
    pub async fn account(&self) -> Result<Account, LoadgenError> {
        let rotation = AccountKey::generate(Algorithm::Es256k);
        let key = AccountKey::generate(Algorithm::Es256k);
        let op = GenesisBuilder::new(&rotation.public_key(), &key.public_key())
            .pds("https://pds.invalid")
            .sign(&rotation);
        let did = op
            .did()
            .map_err(|e| LoadgenError::Start(format!("genesis: {e}")))?
            .as_str()
            .to_owned();
        let mut conn = Conn::connect(self.plc_addr, &self.host).await?;
        let body = Bytes::from(op.to_json().to_string());
        let (status, answer) = conn.post(&format!("/{did}"), body, None).await?;
        if status != 200 {
            return Err(LoadgenError::status(
                "PLC genesis",
                status.as_u16(),
                &answer,
            ));
        }
        Ok(Account { did, key })
    }

    /// Creates a group mailbox (epoch 0) with a fresh key for `account`, with a
    /// service-auth token sent directly (`Authorization: Bearer`).
    pub async fn group_mailbox(
        &self,
        conn: &mut Conn,
        account: &Account,
    ) -> Result<GroupMailbox, LoadgenError> {
        self.group_mailbox_at(conn, account, 0).await
    }

    /// A service-auth token of `account` for `lxm` at this DS, valid for 60 s.
    pub fn service_auth(&self, account: &Account, lxm: &str) -> String {
        let now = SystemClock.now();
        let aud = format!("{}#chat_mls_ds", self.ds_did);
        issue(
            &account.key,
            &Claims::new(&account.did, &aud, lxm, now, Duration::from_secs(60)),
        )
    }

    /// [`Target::group_mailbox`] at `epoch` (the attack suite tries absurd ones).
    pub async fn group_mailbox_at(
        &self,
        conn: &mut Conn,
        account: &Account,
        epoch: u64,
    ) -> Result<GroupMailbox, LoadgenError> {
        let key = SigningKey::from_bytes(&rand::random());
        let jwt = self.service_auth(account, "chat.mls.ds.createMailbox");
        let body =
            codec::create_mailbox_body(MailboxKind::Group, key.verifying_key().as_bytes(), epoch);
        let (status, answer) = conn
            .post(
                "/xrpc/chat.mls.ds.createMailbox",
                Bytes::from(body),
                Some(&format!("Bearer {jwt}")),
            )
            .await?;
        if status != 200 {
            return Err(LoadgenError::status(
                "createMailbox",
                status.as_u16(),
                &answer,
            ));
        }
        let id = codec::create_mailbox_output(&answer)
            .map_err(|e| bad_answer("createMailbox", e))?
            .mailbox;
        let mailbox = GroupMailbox {
            id,
            text: id.to_string(),
            key,
        };
        self.probe(conn, &mailbox).await?;
        Ok(mailbox)
    }

    /// A signed `getMailbox`; on the startup guard's 503, dates later tokens up to the
    /// request age ahead and tries once more.
    async fn probe(&self, conn: &mut Conn, m: &GroupMailbox) -> Result<(), LoadgenError> {
        for attempt in 0..2 {
            let query = format!("mailbox={}", m.text);
            let auth = self
                .token(&m.key, DsMethod::GetMailbox, &m.id, query.as_bytes())
                .authorization_header();
            let path = format!("/xrpc/chat.mls.ds.getMailbox?{query}");
            let (status, body) = conn.get(&path, Some(&auth)).await?;
            match status.as_u16() {
                200 => return Ok(()),
                503 if attempt == 0 && self.sign_offset_ms.load(Ordering::Relaxed) == 0 => {
                    let ahead = self.request_max_age_ms.saturating_sub(5_000);
                    self.sign_offset_ms.store(ahead, Ordering::Relaxed);
                }
                s => return Err(LoadgenError::status("getMailbox", s, &body)),
            }
        }
        Err(LoadgenError::Check(
            "the startup guard still refuses tokens dated a request age ahead".into(),
        ))
    }

    /// Stops an in-process DS (its writer commits what it holds) and its server.
    pub async fn close(mut self) {
        match self.local.take() {
            Some(Local::Sqlite { server, .. }) => server.shutdown().await,
            Some(Local::Postgres(deployment)) => deployment.close().await,
            None => {}
        }
    }
}

/// The DS core's rules of the in-process targets: every simulated client connects from
/// 127.0.0.1, with a handful of accounts and mailboxes, so the per-principal shares
/// (issue 14), which bound what one address, key, mailbox or account may take, would
/// measure the shares, not the service.
fn load_core() -> atmls_ds_xrpc::DsConfig {
    atmls_ds_xrpc::DsConfig::default()
        .with_replay_share_per_key(usize::MAX)
        .with_replay_share_per_mailbox(usize::MAX)
        .with_replay_share_per_source(usize::MAX)
}

/// The shell's per-principal shares unbounded (as `TestServer`'s `unlimited_shares`).
fn unlimited_shares() -> DsShares {
    let mut shares = DsShares::default();
    shares.subscriptions_per_source = Some(usize::MAX);
    shares.subscribers_per_mailbox = Some(usize::MAX);
    shares.welcomes_per_source_per_minute = Some(u64::MAX);
    shares.welcome_bytes_per_source_per_minute = Some(u64::MAX);
    shares.tokens_per_account = Some(usize::MAX);
    shares
}

/// The HTTP server's limits of the in-process targets: room for the scenarios' sockets.
fn load_server() -> ServerConfig {
    ServerConfig::default()
        .with_max_connections(16_384)
        .with_subscription(SubscriptionConfig::default().with_max_subscriptions(16_384))
}

/// The address and authority of an `http://host:port` URL on loopback.
fn loopback(url: &str) -> Result<(SocketAddr, String), LoadgenError> {
    let authority = url
        .strip_prefix("http://")
        .ok_or_else(|| LoadgenError::Url(format!("{url}: only http:// on loopback")))?
        .trim_end_matches('/');
    if authority.contains('/') {
        return Err(LoadgenError::Url(format!("{url}: no path allowed")));
    }
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| LoadgenError::Url(format!("{url}: {e}")))?
        .find(|a| a.ip().is_loopback())
        .ok_or_else(|| LoadgenError::Url(format!("{url}: not a loopback address")))?;
    Ok((addr, authority.to_owned()))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
