//! The query and procedure handlers: parse the request, hand it to the writer, answer.

use std::str::FromStr;

use atmls_ds::auth::{DsMethod, PreChecked, RequestAuth, RequestSource, RequestToken};
use atmls_ds::proto::codec::server as codec;
use atmls_ds::proto::token::header_token;
use atmls_ds::proto::{
    DecodeError, ErrorName, LEXICON_MAX_SUBSCRIPTION_MAILBOXES, Limits, ServerDescription,
};
use atmls_ds::{
    EnvelopeKind, EnvelopeRule, LEXICON_MAX_PAYLOAD, MAX_EPOCH, MailboxId, MailboxKind,
    SendEnvelopesError, SendWelcomeError,
};
use atmls_identity::Did;
use atmls_identity::service_auth::{ServiceAuthError, VerifiedToken};
use atmls_lexicon::chat::mls::ds::{
    create_mailbox, delete_inbox_items, send_envelopes, send_welcome,
};
use serde_json::Value;
use tokio::sync::oneshot;

use super::DsService;
use super::config::normal_endpoint;
use super::keypackages::LookupBudgetSpent;
use super::wire::{core_error, ds_error, output, send_error, status_of};
use super::writer::Command;
use atmls_xrpc::HandlerResult;
use atmls_xrpc::XrpcError;
use atmls_xrpc::{XrpcRequest, XrpcResponse};

/// Most mailboxes one subscription may name (the lexicon's `maxLength`).
pub(crate) const MAX_SUBSCRIPTION_MAILBOXES: usize = LEXICON_MAX_SUBSCRIPTION_MAILBOXES;

fn unavailable() -> XrpcError {
    XrpcError::unavailable("the delivery service is stopping")
}

/// A mailbox id parameter or field.
pub(crate) fn mailbox_id(field: &str, text: Option<&str>) -> Result<MailboxId, XrpcError> {
    let text = text.ok_or_else(|| XrpcError::invalid_request(format!("{field}: required")))?;
    MailboxId::from_str(text).map_err(|e| XrpcError::invalid_request(format!("{field}: {e}")))
}

/// The XRPC error of a request body that does not decode: `InvalidRequest` (or
/// `UnsupportedKind`) naming the field.
fn bad_input(e: &DecodeError) -> XrpcError {
    ds_error(e.error_name(), e.to_string())
}

fn non_negative(field: &str, v: Option<i64>, default: u64) -> Result<u64, XrpcError> {
    v.map_or(Ok(default), |n| {
        u64::try_from(n).map_err(|_| XrpcError::invalid_request(format!("{field}: must be >= 0")))
    })
}

/// The source a request is counted against: its peer address (IPv6 by /64).
pub(crate) fn source_of(req: &XrpcRequest) -> RequestSource {
    RequestSource::from_ip(req.remote_addr().ip())
}

/// `429 RateLimitExceeded` with a retry hint, counted under `limit` in `/metrics`.
pub(crate) fn rate_limited(
    limit: &'static str,
    what: &str,
    retry_after: std::time::Duration,
) -> XrpcError {
    ds_error(
        ErrorName::RateLimitExceeded,
        format!("{what}; retry after {} ms", retry_after.as_millis().max(1)),
    )
    .with_limit(limit)
}

/// The service-auth failure as its XRPC error (`docs/spec.md` §8).
fn service_auth_error(e: &ServiceAuthError) -> XrpcError {
    let name = e.xrpc_error();
    let status = hyper::StatusCode::from_u16(e.http_status()).unwrap_or_else(|_| {
        status_of(ErrorName::from_name(name).unwrap_or(ErrorName::InvalidRequest))
    });
    let error = XrpcError::new(status, name, format!("{}: {e}", e.check()));
    if matches!(e, ServiceAuthError::IssuerShareFull) {
        error.with_limit("service_auth_tokens_per_account")
    } else {
        error
    }
}

impl DsService {
    /// Sends a command to the writer and waits for its answer. If this future is dropped
    /// after the command was queued, the writer still carries it out.
    pub(crate) async fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, XrpcError> {
        let (tx, rx) = oneshot::channel();
        self.inner
            .lanes
            .send(make(tx))
            .await
            .map_err(|_| unavailable())?;
        rx.await.map_err(|_| unavailable())
    }

    /// Refuses mailbox-key tokens dated before the startup guard's end: the replay cache
    /// of the previous process is gone, and such a token may have been used already.
    pub(crate) fn check_startup_guard(&self, token: Option<&str>) -> Result<(), XrpcError> {
        let (Some(until), Some(text)) = (self.inner.guard_until, token) else {
            return Ok(());
        };
        let Ok(token) = RequestToken::decode(text) else {
            // Malformed: the core answers BadToken.
            return Ok(());
        };
        if token.timestamp() < until {
            return Err(XrpcError::unavailable(format!(
                "the service restarted; mailbox requests signed before {} ms are refused \
                 (replay protection), sign a new request later",
                until.as_millis()
            )));
        }
        Ok(())
    }

    /// The `Authorization` header and `content` of a request of `method` on `mailbox`,
    /// after the startup guard, with its token decoded and signature verified here, in
    /// the request's task, so that the writer does not spend its time on Ed25519. A
    /// failed check is reported by the writer at its step of the verification order.
    fn signed(
        &self,
        req: &XrpcRequest,
        content: &[u8],
        method: DsMethod,
        mailbox: &MailboxId,
    ) -> Result<PreChecked, XrpcError> {
        let header = req.header("authorization");
        self.check_startup_guard(header.and_then(header_token))?;
        Ok(RequestAuth::from_header(header, content)
            .check_signature(method, mailbox)
            .with_source(source_of(req)))
    }

    fn query_signed(
        &self,
        req: &XrpcRequest,
        method: DsMethod,
        mailbox: &MailboxId,
    ) -> Result<PreChecked, XrpcError> {
        self.signed(req, req.query_string().as_bytes(), method, mailbox)
    }

    pub(crate) async fn describe_server(&self, _req: XrpcRequest) -> HandlerResult {
        let core = self.inner.config.core();
        let secs = |d: std::time::Duration| d.as_secs();
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let description = ServerDescription {
            did: self.inner.config.did().as_str().to_owned(),
            protocol_version: 1,
            limits: Limits {
                max_envelope_bytes: count(core.max_envelope_bytes().min(LEXICON_MAX_PAYLOAD)),
                max_batch_envelopes: count(core.max_batch_envelopes()),
                max_mailboxes_per_account: core.max_mailboxes_per_account(),
                inbox_deposits_per_minute: u64::from(core.inbox_deposits_per_minute()),
                key_grace_seconds: secs(core.key_grace()),
                request_max_age_seconds: secs(core.request_max_age()).max(1),
                max_subscription_mailboxes: count(MAX_SUBSCRIPTION_MAILBOXES),
                max_mailbox_bytes: Some(core.max_mailbox_bytes()),
                inbox_deposit_bytes_per_minute: Some(core.inbox_deposit_bytes_per_minute()),
                group_retention_seconds: core.group_retention().map(|d| secs(d).max(1)),
                inbox_retention_seconds: core.inbox_retention().map(|d| secs(d).max(1)),
            },
        };
        let body = codec::describe_server_output(&description)
            .map_err(|e| XrpcError::internal(format!("describeServer: {e}")))?;
        output(&body)
    }

    pub(crate) async fn create_mailbox(&self, req: XrpcRequest) -> HandlerResult {
        let token = req.bearer_token().ok_or_else(|| {
            XrpcError::auth_required(
                "createMailbox requires a service-auth token (Authorization: Bearer)",
            )
        })?;
        let now = self.inner.config.clock().now();
        let unrecorded = self
            .inner
            .verifier
            .verify_unrecorded(token, create_mailbox::NSID, now)
            .await
            .map_err(|e| service_auth_error(&e))?;
        self.check_account_pds(unrecorded.claims())?;
        // The cheap checks (body, quota) before the token's id is recorded: a request
        // refused for them spends nothing of the replay store.
        let input = req.input_as::<create_mailbox::Input>()?;
        let input = codec::create_mailbox_input(input).map_err(|e| bad_input(&e))?;
        let kind = input.kind;
        let epoch = input.epoch.unwrap_or(0);
        if kind == MailboxKind::Group && epoch > MAX_EPOCH {
            return Err(XrpcError::invalid_request(format!(
                "input/epoch: at most {MAX_EPOCH}"
            )));
        }
        let account = unrecorded.claims().issuer.as_str().to_owned();
        let max = self.inner.config.core().max_mailboxes_per_account();
        let reached = self
            .call(|reply| Command::QuotaReached {
                account: account.clone(),
                reply,
            })
            .await?
            .map_err(|e| {
                tracing::error!(error = e.kind(), "quota read failed");
                if e.is_transient() {
                    XrpcError::unavailable("the database is unavailable; retry")
                } else {
                    XrpcError::internal("internal server error")
                }
            })?;
        if reached {
            return Err(ds_error(
                ErrorName::QuotaExceeded,
                format!("the account already has {max} mailboxes"),
            ));
        }
        let verified = self
            .inner
            .verifier
            .record(unrecorded, now)
            .map_err(|e| service_auth_error(&e))?;
        let info = self
            .call(|reply| Command::Create {
                account: verified.issuer.as_str().to_owned(),
                kind,
                key: input.key,
                epoch,
                reply,
            })
            .await?
            .map_err(|e| core_error(&e))?;
        output(&codec::create_mailbox_output(&info))
    }

    /// `403 AccountNotServed` unless the DS serves every account or the token's issuer
    /// is on one of its PDSes (`DsServiceConfig::account_pds`), as named by the DID
    /// document that verified the token.
    fn check_account_pds(&self, token: &VerifiedToken) -> Result<(), XrpcError> {
        let allowed = self.inner.config.account_pds();
        if allowed.is_empty() {
            return Ok(());
        }
        let issuer = &token.issuer;
        match token.issuer_pds.as_deref() {
            Some(pds) if allowed.iter().any(|a| *a == normal_endpoint(pds)) => Ok(()),
            Some(pds) => Err(ds_error(
                ErrorName::AccountNotServed,
                format!(
                    "this delivery service serves accounts of {} only; {issuer} is on {pds} \
                     (compared by scheme, host and port: default ports and trailing slashes \
                     dropped, localhost = 127.0.0.1 = [::1])",
                    allowed.join(", ")
                ),
            )),
            None => Err(ds_error(
                ErrorName::AccountNotServed,
                format!("{issuer}'s DID document names no PDS (#atproto_pds)"),
            )),
        }
    }

    pub(crate) async fn get_mailbox(&self, req: XrpcRequest) -> HandlerResult {
        let id = mailbox_id("params/mailbox", req.param_str("mailbox"))?;
        let auth = self.query_signed(&req, DsMethod::GetMailbox, &id)?;
        let info = self
            .call(|reply| Command::Mailbox { id, auth, reply })
            .await?
            .map_err(|e| core_error(&e))?;
        output(&codec::get_mailbox_output(&info))
    }

    pub(crate) async fn send_envelopes(&self, req: XrpcRequest) -> HandlerResult {
        let input = req.input_as::<send_envelopes::Input>()?;
        let codec::SendEnvelopesRequest {
            mailbox: id,
            envelopes,
            unknown_kinds: unknown,
        } = codec::send_envelopes_input(input).map_err(|e| bad_input(&e))?;
        let auth = self.signed(&req, req.body(), DsMethod::SendEnvelopes, &id)?;
        let receipt = self
            .call(|reply| Command::Send {
                id,
                auth,
                envelopes,
                reply,
            })
            .await?
            .map_err(|e| match &e {
                SendEnvelopesError::InvalidEnvelope {
                    index,
                    rule: EnvelopeRule::Kind(EnvelopeKind::Welcome),
                } => match unknown.iter().find(|(i, _)| i == index) {
                    Some((_, kind)) => ds_error(
                        ErrorName::InvalidEnvelope,
                        format!("envelope {index}: unknown kind {:?}", kind.0),
                    ),
                    None => send_error(&e),
                },
                _ => send_error(&e),
            })?;
        output(&codec::send_envelopes_output(&receipt))
    }

    pub(crate) async fn get_envelopes(&self, req: XrpcRequest) -> HandlerResult {
        let id = mailbox_id("params/mailbox", req.param_str("mailbox"))?;
        let cursor = non_negative("params/cursor", req.param_i64("cursor"), 0)?;
        let limit = page_limit(&req);
        let auth = self.query_signed(&req, DsMethod::GetEnvelopes, &id)?;
        let page = self
            .call(|reply| Command::Envelopes {
                id,
                auth,
                cursor,
                limit,
                reply,
            })
            .await?
            .map_err(|e| core_error(&e))?;
        output(&codec::get_envelopes_output(&page))
    }

    pub(crate) async fn send_welcome(&self, req: XrpcRequest) -> HandlerResult {
        let input = req.input_as::<send_welcome::Input>()?;
        let (inbox, payload) = codec::send_welcome_input(input).map_err(|e| bad_input(&e))?;
        // Sending a welcome needs no identity: the source's share bounds what one sender
        // can deposit across every inbox (each inbox has its own share in the core).
        let now = self.inner.config.clock().now();
        let len = payload.len() as u64;
        // The cheap refusal first: an oversized welcome costs no share.
        let max = self.inner.config.core().payload_limit();
        if payload.len() > max {
            return Err(core_error(&SendWelcomeError::EnvelopeTooLarge {
                len: payload.len(),
                max,
            }));
        }
        self.inner
            .welcomes
            .charge(source_of(&req), 1, len, now)
            .map_err(|r| {
                rate_limited(
                    "welcomes_per_source",
                    "too many welcomes from this source",
                    r.0,
                )
            })?;
        // Nor may one source take more than its share of one inbox's allowance, so a
        // flood into a victim's public inbox leaves room for real invitations.
        self.inner
            .welcomes_into_inbox
            .charge((source_of(&req), inbox), 1, len, now)
            .map_err(|r| {
                rate_limited(
                    "welcomes_per_source_per_inbox",
                    "too many welcomes from this source into this inbox",
                    r.0,
                )
            })?;
        let seq = self
            .call(|reply| Command::Welcome {
                inbox,
                payload,
                reply,
            })
            .await?
            .map_err(|e| core_error(&e))?;
        output(&codec::send_welcome_output(seq))
    }

    pub(crate) async fn list_inbox(&self, req: XrpcRequest) -> HandlerResult {
        let inbox = mailbox_id("params/inbox", req.param_str("inbox"))?;
        let cursor = non_negative("params/cursor", req.param_i64("cursor"), 0)?;
        let limit = page_limit(&req);
        let auth = self.query_signed(&req, DsMethod::ListInbox, &inbox)?;
        let page = self
            .call(|reply| Command::ListInbox {
                inbox,
                auth,
                cursor,
                limit,
                reply,
            })
            .await?
            .map_err(|e| core_error(&e))?;
        output(&codec::list_inbox_output(&page))
    }

    pub(crate) async fn delete_inbox_items(&self, req: XrpcRequest) -> HandlerResult {
        let input = req.input_as::<delete_inbox_items::Input>()?;
        let (inbox, seqs) = codec::delete_inbox_items_input(input).map_err(|e| bad_input(&e))?;
        let auth = self.signed(&req, req.body(), DsMethod::DeleteInboxItems, &inbox)?;
        let deleted = self
            .call(|reply| Command::DeleteInbox {
                inbox,
                auth,
                seqs,
                reply,
            })
            .await?
            .map_err(|e| core_error(&e))?;
        output(&codec::delete_inbox_items_output(deleted))
    }

    pub(crate) async fn get_key_packages(&self, req: XrpcRequest) -> HandlerResult {
        let texts: Vec<&str> = match req.params().get("dids") {
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(s)) => vec![s.as_str()],
            _ => return Err(XrpcError::invalid_request("params/dids: required")),
        };
        // The router checked `format: did` already; parsing keeps the type.
        let dids = texts
            .into_iter()
            .map(Did::new)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| XrpcError::invalid_request(format!("params/dids: {e}")))?;
        let now = self.inner.config.clock().now();
        let body = self
            .inner
            .key_packages
            .answer(&dids, source_of(&req), now)
            .await
            .map_err(|LookupBudgetSpent { retry_after }| {
                rate_limited(
                    "key_package_lookups_per_source",
                    "too many DIDs looked up from this source",
                    retry_after,
                )
            })?;
        Ok(XrpcResponse::bytes("application/json", body))
    }
}

/// The `limit` parameter (default 100; the lexicon bounds it to 1–1000).
fn page_limit(req: &XrpcRequest) -> u32 {
    req.param_i64("limit")
        .map_or(100, |l| u32::try_from(l.clamp(1, 1000)).unwrap_or(100))
}
