//! Token decoding and signature verification done ahead of the core.
//!
//! Steps 1 and 3 of the verification order (`docs/spec.md` §9.4.4) depend only on the
//! request — its token, method, mailbox id and signed content — not on the core's state
//! or the time. [`RequestAuth::check_signature`] does them wherever the request arrives
//! (e.g. in its own task, in parallel with other requests) and returns a [`PreChecked`];
//! the core then applies the seven steps in their order, taking the outcome of steps 1
//! and 3 from it. A request whose pre-check failed gets the same error at the same step
//! as if the core had checked it itself: an expired timestamp (step 2) is still reported
//! before a bad signature (step 3), an unknown mailbox (step 4) only after it.

use std::borrow::Cow;

use super::{DsMethod, RequestAuth, RequestSource, RequestToken};
use crate::error::AuthError;
use atmls_ds_proto::MailboxId;

/// A request's authorisation with its token decoded and its signature verified for one
/// method and mailbox, outside the core.
///
/// Only built by [`RequestAuth::check_signature`]. It owns what the core still needs
/// (the token's key, timestamp and nonce), so it can be sent to another thread; the signed
/// content is no longer needed.
#[derive(Debug, Clone)]
pub struct PreChecked {
    method: DsMethod,
    mailbox: MailboxId,
    outcome: Outcome,
    source: Option<RequestSource>,
}

#[derive(Debug, Clone)]
enum Outcome {
    /// Step 1 failed: `AuthRequired` or `BadToken`.
    Refused(AuthError),
    /// Step 1 passed; `signature` is the verdict of step 3 (`BadSignature` if it failed).
    Decoded {
        token: RequestToken,
        signature: Result<(), AuthError>,
    },
}

impl PreChecked {
    /// The method the signature was checked for.
    pub fn method(&self) -> DsMethod {
        self.method
    }

    /// The mailbox the signature was checked for.
    pub fn mailbox(&self) -> &MailboxId {
        &self.mailbox
    }

    /// Names where the request came from, so that the core counts it against that
    /// source's share of the replay cache ([`crate::DsConfig::replay_share_per_source`]).
    #[must_use]
    pub fn with_source(mut self, source: RequestSource) -> Self {
        self.source = Some(source);
        self
    }

    /// Where the request came from, if the server said.
    pub fn source(&self) -> Option<RequestSource> {
        self.source
    }

    /// The key and nonce of a well-formed token (for undoing its replay-cache entry).
    pub(crate) fn key_nonce(&self) -> Option<([u8; 32], [u8; 16])> {
        match &self.outcome {
            Outcome::Refused(_) => None,
            Outcome::Decoded { token, .. } => Some((*token.key(), *token.nonce())),
        }
    }

    /// The outcome of step 1 (token present and well-formed): the decoded token, or
    /// `AuthRequired` / `BadToken`.
    pub(crate) fn token(&self) -> Result<&RequestToken, AuthError> {
        match &self.outcome {
            Outcome::Refused(e) => Err(e.clone()),
            Outcome::Decoded { token, .. } => Ok(token),
        }
    }

    /// The outcome of step 3 for `method` on `mailbox`: the verdict computed by
    /// [`RequestAuth::check_signature`] if it was computed for them, else `BadSignature`
    /// (the signing bytes include both, so a signature over other ones does not verify).
    /// Only meaningful once [`PreChecked::token`] succeeded.
    pub(crate) fn signature(&self, method: DsMethod, mailbox: &MailboxId) -> Result<(), AuthError> {
        match &self.outcome {
            Outcome::Refused(e) => Err(e.clone()),
            Outcome::Decoded { .. } if method != self.method || *mailbox != self.mailbox => {
                Err(AuthError::BadSignature)
            }
            Outcome::Decoded { signature, .. } => signature.clone(),
        }
    }
}

impl RequestAuth<'_> {
    /// Steps 1 and 3 of the verification order for a request of `method` on `mailbox`:
    /// decodes the token and verifies its signature over the signing bytes of this
    /// request's content (strict Ed25519). A pure function of the request; it never
    /// fails — the outcome is kept in the [`PreChecked`] and reported by the core at its
    /// step.
    ///
    /// The signature is verified even when the token's timestamp is out of the window:
    /// the window is judged by the core at its own `now`.
    pub fn check_signature(&self, method: DsMethod, mailbox: &MailboxId) -> PreChecked {
        let outcome = match self
            .token()
            .ok_or(AuthError::AuthRequired)
            .and_then(|text| RequestToken::decode(text).map_err(AuthError::from))
        {
            Err(e) => Outcome::Refused(e),
            Ok(token) => {
                let signature = token
                    .verify(method, mailbox, self.content())
                    .map_err(AuthError::from);
                Outcome::Decoded { token, signature }
            }
        };
        PreChecked {
            method,
            mailbox: *mailbox,
            outcome,
            source: None,
        }
    }
}

/// What a core operation accepts as a request's mailbox-key authorisation: a
/// [`RequestAuth`] (the core checks the token and signature itself) or a [`PreChecked`]
/// (they were checked already). Sealed: implemented for these two types only.
pub trait Authorization: sealed::Sealed {
    /// The pre-checked form of this authorisation for `method` on `mailbox`.
    fn pre_checked(&self, method: DsMethod, mailbox: &MailboxId) -> Cow<'_, PreChecked>;
}

impl Authorization for RequestAuth<'_> {
    fn pre_checked(&self, method: DsMethod, mailbox: &MailboxId) -> Cow<'_, PreChecked> {
        Cow::Owned(self.check_signature(method, mailbox))
    }
}

impl Authorization for PreChecked {
    fn pre_checked(&self, _method: DsMethod, _mailbox: &MailboxId) -> Cow<'_, PreChecked> {
        // A mismatch of method or mailbox is judged at step 3 (`PreChecked::signature`).
        Cow::Borrowed(self)
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::RequestAuth<'_> {}
    impl Sealed for super::PreChecked {}
}
