//! Accounts and sessions: `createAccount`, `createSession`, `refreshSession`,
//! `getSession`, `deleteSession`, and checking access tokens.

use std::time::Duration;

use atmls_crypto::{Algorithm, SigningKey};
use atmls_identity::plc::GenesisBuilder;
use atmls_identity::service_auth::unix_secs;
use atmls_repo::Repo;
use atmls_syntax::Handle;
use atmls_syntax::Timestamp;
use rusqlite::{OptionalExtension as _, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::HostError;
use crate::host::Host;
use crate::jwt::{self, SessionClaims, TokenKind};
use crate::password;

/// The input of `com.atproto.server.createAccount` (the fields this host reads).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CreateAccountInput {
    /// The requested handle, e.g. `alice.test`.
    pub handle: String,
    /// An email address (stored, never verified or used).
    pub email: Option<String>,
    /// The password (required here, although the lexicon makes it optional).
    pub password: Option<String>,
    /// A DID to bring along: not supported (this host creates a did:plc).
    pub did: Option<String>,
    /// A signed PLC operation for a brought DID: not supported.
    pub plc_op: Option<Value>,
}

impl CreateAccountInput {
    /// An account `handle` with `password`.
    pub fn new(handle: impl Into<String>, password: impl Into<String>) -> Self {
        CreateAccountInput {
            handle: handle.into(),
            password: Some(password.into()),
            ..Default::default()
        }
    }

    /// Adds an email address.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Account {
    /// Its DID.
    pub did: String,
    /// Its handle (lowercase).
    pub handle: String,
    /// Its email, if given.
    pub email: Option<String>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it was deactivated, if it was.
    pub deactivated_at: Option<String>,
}

impl Account {
    /// Whether the account is active.
    pub fn is_active(&self) -> bool {
        self.deactivated_at.is_none()
    }
}

/// A new or refreshed session: the output of `createAccount`, `createSession` and
/// `refreshSession`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Session {
    /// The access token (short-lived).
    pub access_jwt: String,
    /// The refresh token (long-lived, single use).
    pub refresh_jwt: String,
    /// The account's handle.
    pub handle: String,
    /// The account's DID.
    pub did: String,
    /// The account's DID document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub did_doc: Option<Value>,
    /// The account's email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the account is active.
    pub active: bool,
    /// `deactivated` when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// The output of `getSession`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SessionInfo {
    /// The account's handle.
    pub handle: String,
    /// The account's DID.
    pub did: String,
    /// The account's email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Always false: this host verifies no email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_confirmed: Option<bool>,
    /// The account's DID document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub did_doc: Option<Value>,
    /// Whether the account is active.
    pub active: bool,
    /// `deactivated` when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// The caller of a method, authenticated by an access token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Caller {
    /// The account's DID.
    pub did: String,
    /// The session the token belongs to.
    pub session_id: String,
}

fn random_id() -> String {
    rand::random::<[u8; 16]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn timestamp(now: Timestamp) -> String {
    let ms = i64::try_from(now.as_millis()).unwrap_or(i64::MAX);
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl Host {
    /// `createAccount`: checks the handle and password, creates a did:plc in the
    /// directory with a fresh ES256K repo signing key, an empty signed repo, and a first
    /// session.
    pub fn create_account(
        &self,
        input: &CreateAccountInput,
        now: Timestamp,
    ) -> Result<Session, HostError> {
        if input.did.is_some() || input.plc_op.is_some() {
            return Err(HostError::InvalidRequest(
                "bringing an existing DID is not supported by this host".into(),
            ));
        }
        let handle = self.check_new_handle(&input.handle)?;
        let password = input
            .password
            .as_deref()
            .ok_or_else(|| HostError::InvalidPassword("a password is required".into()))?;
        if password.is_empty() || password.len() > password::MAX_PASSWORD_BYTES {
            return Err(HostError::InvalidPassword(format!(
                "a password must have 1 to {} bytes",
                password::MAX_PASSWORD_BYTES
            )));
        }
        let email = input.email.as_deref().map(str::trim).map(str::to_lowercase);
        if let Some(email) = &email
            && (email.is_empty() || email.len() > 254 || !email.contains('@'))
        {
            return Err(HostError::InvalidRequest("invalid email address".into()));
        }
        let password_hash = password::hash(password)?;

        let key = SigningKey::generate(Algorithm::Es256k);
        let genesis = GenesisBuilder::new(&self.rotation_key.public_key(), &key.public_key())
            .handle(&handle)
            .pds(&self.config.public_url)
            .sign(&self.rotation_key);
        let did = genesis.did().map_err(HostError::internal)?;

        // The account row first: the UNIQUE constraints decide races on the handle.
        {
            let conn = self.db.lock();
            let inserted = conn.execute(
                "INSERT INTO accounts (did, handle, email, password_hash, key_alg, signing_key,
                                       created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    did.as_str(),
                    handle,
                    email,
                    password_hash,
                    key.algorithm().jwt_name(),
                    key.to_bytes().to_vec(),
                    timestamp(now)
                ],
            );
            match inserted {
                Ok(_) => {}
                Err(rusqlite::Error::SqliteFailure(e, msg))
                    if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    let what = msg.unwrap_or_default();
                    return Err(if what.contains("email") {
                        HostError::InvalidRequest("email already taken".into())
                    } else {
                        HostError::HandleNotAvailable(format!("handle already taken: {handle}"))
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        let created = self
            .directory
            .submit(&did, genesis, now)
            .map_err(HostError::internal)
            .and_then(|()| {
                let repo_did = did.as_str().parse().map_err(HostError::internal)?;
                Repo::create(&self.blocks, repo_did, key).map_err(HostError::from)?;
                Ok(())
            });
        if let Err(e) = created {
            let conn = self.db.lock();
            conn.execute("DELETE FROM accounts WHERE did = ?1", params![did.as_str()])?;
            return Err(e);
        }
        tracing::info!("account created");
        let account = self.account(did.as_str())?;
        self.new_session(&account, now)
    }

    fn check_new_handle(&self, handle: &str) -> Result<String, HostError> {
        let parsed = Handle::new(handle)
            .map_err(|e| HostError::InvalidHandle(format!("invalid handle: {e}")))?;
        let handle = parsed.to_normalized().as_str().to_owned();
        let served = self.config.handle_domains.iter().any(|d| {
            let d = d.to_ascii_lowercase();
            handle.ends_with(&d)
                && handle.len() > d.len()
                && !handle[..handle.len() - d.len()].contains('.')
        });
        if !served {
            return Err(HostError::UnsupportedDomain(format!(
                "handles must be one label under one of: {}",
                self.config.handle_domains.join(", ")
            )));
        }
        Ok(handle)
    }

    /// The account with this DID.
    pub fn account(&self, did: &str) -> Result<Account, HostError> {
        self.find_account("did = ?1", did)?
            .ok_or_else(|| HostError::AccountNotFound(did.to_owned()))
    }

    /// The account with this DID, handle (or, for login, email).
    pub fn account_by_identifier(&self, identifier: &str) -> Result<Account, HostError> {
        let id = identifier.trim();
        let found = if id.starts_with("did:") {
            self.find_account("did = ?1", id)?
        } else if id.contains('@') {
            self.find_account("email = ?1", &id.to_lowercase())?
        } else {
            self.find_account("handle = ?1", &id.to_lowercase())?
        };
        found.ok_or_else(|| HostError::AccountNotFound(id.to_owned()))
    }

    fn find_account(&self, condition: &str, value: &str) -> Result<Option<Account>, HostError> {
        let conn = self.db.lock();
        let sql = format!(
            "SELECT did, handle, email, created_at, deactivated_at FROM accounts WHERE {condition}"
        );
        Ok(conn
            .query_row(&sql, params![value], |r| {
                Ok(Account {
                    did: r.get(0)?,
                    handle: r.get(1)?,
                    email: r.get(2)?,
                    created_at: r.get(3)?,
                    deactivated_at: r.get(4)?,
                })
            })
            .optional()?)
    }

    /// Every account's DID, sorted.
    pub fn account_dids(&self) -> Result<Vec<String>, HostError> {
        let conn = self.db.lock();
        let mut stmt = conn.prepare("SELECT did FROM accounts ORDER BY did")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The repo signing key of `did`.
    pub(crate) fn signing_key(&self, did: &str) -> Result<SigningKey, HostError> {
        let conn = self.db.lock();
        let (alg, bytes): (String, Vec<u8>) = conn
            .query_row(
                "SELECT key_alg, signing_key FROM accounts WHERE did = ?1",
                params![did],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| HostError::AccountNotFound(did.to_owned()))?;
        let alg = Algorithm::from_jwt_name(&alg).map_err(HostError::internal)?;
        SigningKey::from_bytes(alg, &bytes).map_err(HostError::internal)
    }

    /// The DID document of a local account, as JSON.
    pub fn did_document(&self, did: &str) -> Option<Value> {
        let did = atmls_identity::PlcDid::new(did).ok()?;
        let doc = self.directory.document(&did).ok()?;
        serde_json::to_value(doc).ok()
    }

    /// `createSession`: logs in with a handle, DID or email and the password, from
    /// `source` (the caller's address, if known). An account with too many recent
    /// failures from this source, or from everywhere while this source has failed too,
    /// refuses more tries before the password is hashed
    /// ([`ThrottleConfig::login_failures_per_account`]); a wrong password counts as a
    /// failure of its account and source. Per-source attempt limits are the shell's,
    /// with [`Host::throttle`].
    ///
    /// [`ThrottleConfig::login_failures_per_account`]: crate::ThrottleConfig::login_failures_per_account
    pub fn create_session(
        &self,
        identifier: &str,
        password: &str,
        source: Option<std::net::IpAddr>,
        now: Timestamp,
    ) -> Result<Session, HostError> {
        let account = match self.account_by_identifier(identifier) {
            Ok(a) => a,
            Err(HostError::AccountNotFound(_)) => {
                // Same cost and answer as a wrong password: no account enumeration by timing.
                let _ = password::verify(password, DUMMY_HASH);
                return Err(HostError::AuthenticationFailed);
            }
            Err(e) => return Err(e),
        };
        let stored: String = self.db.lock().query_row(
            "SELECT password_hash FROM accounts WHERE did = ?1",
            params![account.did],
            |r| r.get(0),
        )?;
        self.throttle.login_allowed(&account.did, source, now)?;
        if password.len() > password::MAX_PASSWORD_BYTES || !password::verify(password, &stored) {
            self.throttle.login_failed(&account.did, source, now);
            return Err(HostError::AuthenticationFailed);
        }
        self.new_session(&account, now)
    }

    fn new_session(&self, account: &Account, now: Timestamp) -> Result<Session, HostError> {
        let sid = random_id();
        let refresh_jti = random_id();
        let expires = now.saturating_add(self.config.refresh_ttl);
        self.db.lock().execute(
            "INSERT INTO sessions (id, did, refresh_jti, created_ms, expires_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                sid,
                account.did,
                refresh_jti,
                to_i64(now.as_millis()),
                to_i64(expires.as_millis())
            ],
        )?;
        Ok(self.session_tokens(account, &sid, &refresh_jti, now))
    }

    fn session_tokens(
        &self,
        account: &Account,
        sid: &str,
        refresh_jti: &str,
        now: Timestamp,
    ) -> Session {
        let now = unix_secs(now);
        let claims = |kind: TokenKind, ttl: Duration, jti: &str| SessionClaims {
            scope: kind.scope().to_owned(),
            sub: account.did.clone(),
            aud: self.config.service_did.clone(),
            iat: now,
            exp: now.saturating_add(ttl.as_secs()),
            jti: jti.to_owned(),
            sid: sid.to_owned(),
        };
        let access = claims(TokenKind::Access, self.config.access_ttl, &random_id());
        let refresh = claims(TokenKind::Refresh, self.config.refresh_ttl, refresh_jti);
        Session {
            access_jwt: jwt::encode(&self.secret, TokenKind::Access, &access),
            refresh_jwt: jwt::encode(&self.secret, TokenKind::Refresh, &refresh),
            handle: account.handle.clone(),
            did: account.did.clone(),
            did_doc: self.did_document(&account.did),
            email: account.email.clone(),
            active: account.is_active(),
            status: (!account.is_active()).then(|| "deactivated".to_owned()),
        }
    }

    /// `refreshSession`: exchanges a refresh token for a new access token and a new
    /// refresh token. The old refresh token is dead from then on.
    pub fn refresh_session(
        &self,
        refresh_token: &str,
        now: Timestamp,
    ) -> Result<Session, HostError> {
        let claims = jwt::decode(&self.secret, TokenKind::Refresh, refresh_token, now)?;
        let new_jti = random_id();
        let expires = now.saturating_add(self.config.refresh_ttl);
        // Compare-and-set on the current refresh id: of two racing refreshes, one wins.
        let changed = self.db.lock().execute(
            "UPDATE sessions SET refresh_jti = ?1, expires_ms = ?2
             WHERE id = ?3 AND did = ?4 AND refresh_jti = ?5",
            params![
                new_jti,
                to_i64(expires.as_millis()),
                claims.sid,
                claims.sub,
                claims.jti
            ],
        )?;
        if changed != 1 {
            return Err(HostError::InvalidToken(
                "token has been revoked or already used".into(),
            ));
        }
        let account = self.account(&claims.sub)?;
        Ok(self.session_tokens(&account, &claims.sid, &new_jti, now))
    }

    /// `deleteSession`: ends the session of a refresh token; its access tokens stop
    /// working at once.
    pub fn delete_session(&self, refresh_token: &str, now: Timestamp) -> Result<(), HostError> {
        let claims = jwt::decode(&self.secret, TokenKind::Refresh, refresh_token, now)?;
        let deleted = self.db.lock().execute(
            "DELETE FROM sessions WHERE id = ?1 AND did = ?2 AND refresh_jti = ?3",
            params![claims.sid, claims.sub, claims.jti],
        )?;
        if deleted != 1 {
            return Err(HostError::InvalidToken(
                "token has been revoked or already used".into(),
            ));
        }
        Ok(())
    }

    /// Checks an access token: signature, kind, expiry, and that its session is live.
    pub fn authenticate(&self, access_token: &str, now: Timestamp) -> Result<Caller, HostError> {
        let claims = jwt::decode(&self.secret, TokenKind::Access, access_token, now)?;
        let live: Option<i64> = self
            .db
            .lock()
            .query_row(
                "SELECT expires_ms FROM sessions WHERE id = ?1 AND did = ?2",
                params![claims.sid, claims.sub],
                |r| r.get(0),
            )
            .optional()?;
        match live {
            Some(expires) if expires > to_i64(now.as_millis()) => Ok(Caller {
                did: claims.sub,
                session_id: claims.sid,
            }),
            Some(_) => Err(HostError::ExpiredToken),
            None => Err(HostError::InvalidToken("token has been revoked".into())),
        }
    }

    /// `getSession`: the caller's account.
    pub fn session_info(&self, caller: &Caller) -> Result<SessionInfo, HostError> {
        let account = self.account(&caller.did)?;
        Ok(SessionInfo {
            did_doc: self.did_document(&account.did),
            email_confirmed: account.email.as_ref().map(|_| false),
            active: account.is_active(),
            status: (!account.is_active()).then(|| "deactivated".to_owned()),
            handle: account.handle,
            did: account.did,
            email: account.email,
        })
    }

    /// Deactivates an account: its repo is no longer served and cannot be written.
    pub fn deactivate_account(&self, did: &str, now: Timestamp) -> Result<(), HostError> {
        let changed = self.db.lock().execute(
            "UPDATE accounts SET deactivated_at = ?1 WHERE did = ?2",
            params![timestamp(now), did],
        )?;
        if changed == 0 {
            return Err(HostError::AccountNotFound(did.to_owned()));
        }
        Ok(())
    }
}

/// Verified against when the account does not exist, so that both failures cost the same.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2vF1mB7l4tqwJMn7Y8H5L7kSdJ9X0cTQ0bXW6c0jq4Q";

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
