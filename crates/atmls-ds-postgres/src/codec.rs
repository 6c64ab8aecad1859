//! Rows to values and back: the same integer codes as the SQLite store.

use atmls_ds::auth::MailboxKey;
use atmls_ds::store::{Mailbox, MailboxKeys, PreviousKey};
use atmls_ds::{EnvelopeKind, MailboxId, MailboxKind, StoreError, Timestamp};
use tokio_postgres::Row;

/// The mailbox columns, in the order [`decode_mailbox`] reads them.
pub(crate) const MAILBOX_COLUMNS: &str =
    "id, kind, head, epoch, key, prev_key, prev_valid_until, stored_bytes, message_ttl";

pub(crate) fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::OutOfRange(v))
}

pub(crate) fn to_u64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative value {v}")))
}

fn key_from(bytes: &[u8]) -> Result<MailboxKey, StoreError> {
    MailboxKey::from_bytes(bytes).map_err(|_| StoreError::Corrupt("invalid stored key".into()))
}

pub(crate) fn id_from(bytes: &[u8]) -> Result<MailboxId, StoreError> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| StoreError::Corrupt("mailbox id length".into()))?;
    Ok(MailboxId::from_bytes(bytes))
}

pub(crate) fn envelope_kind_code(kind: EnvelopeKind) -> i16 {
    match kind {
        EnvelopeKind::Message => 0,
        EnvelopeKind::Commit => 1,
        EnvelopeKind::Welcome => 2,
    }
}

pub(crate) fn envelope_kind_from(code: i16) -> Result<EnvelopeKind, StoreError> {
    match code {
        0 => Ok(EnvelopeKind::Message),
        1 => Ok(EnvelopeKind::Commit),
        2 => Ok(EnvelopeKind::Welcome),
        other => Err(StoreError::Corrupt(format!("envelope kind {other}"))),
    }
}

/// The envelope kinds a mailbox of `kind` holds.
pub(crate) fn envelope_codes_of(kind: MailboxKind) -> Vec<i16> {
    match kind {
        MailboxKind::Group => vec![0, 1],
        MailboxKind::Inbox => vec![2],
    }
}

/// A row of [`MAILBOX_COLUMNS`].
pub(crate) fn decode_mailbox(r: &Row) -> Result<Mailbox, StoreError> {
    let get = |e: tokio_postgres::Error| StoreError::Corrupt(format!("mailbox row: {e}"));
    let id = id_from(r.try_get::<_, &[u8]>(0).map_err(get)?)?;
    let kind: i16 = r.try_get(1).map_err(get)?;
    let head: i64 = r.try_get(2).map_err(get)?;
    let epoch: Option<i64> = r.try_get(3).map_err(get)?;
    let key: &[u8] = r.try_get(4).map_err(get)?;
    let prev_key: Option<&[u8]> = r.try_get(5).map_err(get)?;
    let prev_until: Option<i64> = r.try_get(6).map_err(get)?;
    let bytes: i64 = r.try_get(7).map_err(get)?;
    let lifetime: Option<i64> = r.try_get(8).map_err(get)?;
    let keys = match kind {
        0 => MailboxKeys::Group {
            epoch: to_u64(epoch.ok_or_else(|| StoreError::Corrupt("group without epoch".into()))?)?,
            current: key_from(key)?,
            previous: match (prev_key, prev_until) {
                (Some(k), Some(until)) => Some(PreviousKey {
                    key: key_from(k)?,
                    valid_until: Timestamp::from_millis(to_u64(until)?),
                }),
                (None, None) => None,
                _ => return Err(StoreError::Corrupt("half a previous key".into())),
            },
        },
        1 => MailboxKeys::Inbox {
            owner: key_from(key)?,
        },
        other => return Err(StoreError::Corrupt(format!("mailbox kind {other}"))),
    };
    Ok(Mailbox {
        id,
        head: to_u64(head)?,
        keys,
        stored_bytes: to_u64(bytes)?,
        message_lifetime: lifetime
            .map(|v| {
                u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("message lifetime {v}")))
            })
            .transpose()?,
    })
}

/// The columns of a mailbox's keys: kind, epoch, key, prev_key, prev_valid_until.
pub(crate) struct KeyColumns<'a> {
    pub(crate) kind: i16,
    pub(crate) epoch: Option<i64>,
    pub(crate) key: &'a [u8],
    pub(crate) prev_key: Option<&'a [u8]>,
    pub(crate) prev_valid_until: Option<i64>,
}

pub(crate) fn encode_keys(keys: &MailboxKeys) -> Result<KeyColumns<'_>, StoreError> {
    Ok(match keys {
        MailboxKeys::Group {
            epoch,
            current,
            previous,
        } => KeyColumns {
            kind: 0,
            epoch: Some(to_i64(*epoch)?),
            key: current.as_bytes(),
            prev_key: previous.as_ref().map(|p| p.key.as_bytes().as_slice()),
            prev_valid_until: previous
                .map(|p| to_i64(p.valid_until.as_millis()))
                .transpose()?,
        },
        MailboxKeys::Inbox { owner } => KeyColumns {
            kind: 1,
            epoch: None,
            key: owner.as_bytes(),
            prev_key: None,
            prev_valid_until: None,
        },
    })
}
