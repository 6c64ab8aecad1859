//! `request-signature.json`: DS request signatures (docs/spec.md §9.4) made by the DS
//! crate's `RequestToken::sign` over `signing_bytes`, one per kind of signed content.

use atmls_ds_proto::token::{DsMethod, RequestToken, signing_bytes, subscription_content};
use atmls_ds_proto::{MailboxId, Timestamp};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::hex::hex;
use crate::{VectorError, VectorFile, fail, topic_file};

const TOPIC: &str = "request-signature.json";

enum Content {
    /// A procedure: the exact body.
    Body(String),
    /// A query: the exact query string.
    Query(String),
    /// A subscription: the query string without `auth`; the token is appended as
    /// `auth=<token>` at `auth_at` (a component index) to give the query as sent.
    Subscription { query: String, auth_at: usize },
}

struct Case {
    name: &'static str,
    seed: [u8; 32],
    method: DsMethod,
    mailbox: MailboxId,
    timestamp: u64,
    nonce: [u8; 16],
    content: Content,
}

fn vector(case: Case) -> Result<Value, VectorError> {
    let key = SigningKey::from_bytes(&case.seed);
    let public = key.verifying_key().to_bytes();
    let signed: Vec<u8> = match &case.content {
        Content::Body(s) | Content::Query(s) | Content::Subscription { query: s, .. } => {
            s.as_bytes().to_vec()
        }
    };
    let timestamp = Timestamp::from_millis(case.timestamp);
    let token = RequestToken::sign(
        &key,
        case.method,
        &case.mailbox,
        timestamp,
        case.nonce,
        &signed,
    );
    token
        .verify(case.method, &case.mailbox, &signed)
        .map_err(|e| fail(TOPIC, e))?;
    let bytes = signing_bytes(
        case.method,
        &case.mailbox,
        &public,
        timestamp,
        &case.nonce,
        &signed,
    );
    let mut v = json!({
        "name": case.name,
        "seed": hex(&case.seed),
        "method": case.method.nsid(),
        "mailbox": case.mailbox.to_string(),
        "timestampMs": case.timestamp,
        "nonce": hex(&case.nonce),
    });
    match case.content {
        Content::Body(body) => v["body"] = json!(body),
        Content::Query(query) => v["query"] = json!(query),
        Content::Subscription { query, auth_at } => {
            let mut parts: Vec<String> = query.split('&').map(str::to_owned).collect();
            parts.insert(auth_at, format!("auth={}", token.encode()));
            let sent = parts.join("&");
            if subscription_content(&sent) != query {
                return Err(fail(TOPIC, "subscription content does not strip auth"));
            }
            v["subscriptionQuery"] = json!(sent);
            v["signedContent"] = json!(query);
        }
    }
    v["publicKey"] = json!(hex(&public));
    v["contentSha256"] = json!(hex(&Sha256::digest(&signed)));
    v["signingBytes"] = json!(hex(&bytes));
    v["signature"] = json!(hex(&token.to_bytes()[56..]));
    v["token"] = json!(token.encode());
    v["authorization"] = json!(token.authorization_header());
    Ok(v)
}

pub(crate) fn file() -> Result<VectorFile, VectorError> {
    let group = MailboxId::from_bytes([1; 32]);
    let inbox = MailboxId::from_bytes(crate::rng::array("request-signature/inbox"));
    let group2 = MailboxId::from_bytes(crate::rng::array("request-signature/group 2"));
    let cases = vec![
        Case {
            name: "procedure sendEnvelopes (docs/spec.md §9.4.3)",
            seed: [7; 32],
            method: DsMethod::SendEnvelopes,
            mailbox: group,
            timestamp: 1_800_000_000_000,
            nonce: [2; 16],
            content: Content::Body(format!(
                "{{\"mailbox\":\"{group}\",\"envelopes\":[{{\"kind\":\"message\",\"payload\":{{\"$bytes\":\"aGk\"}}}}]}}"
            )),
        },
        Case {
            name: "query getEnvelopes (percent-encoding untouched)",
            seed: crate::rng::array("request-signature/group key"),
            method: DsMethod::GetEnvelopes,
            mailbox: group2,
            timestamp: 1_800_000_123_456,
            nonce: crate::rng::array("request-signature/nonce 2"),
            content: Content::Query(format!("mailbox={group2}&cursor=41&limit=100")),
        },
        Case {
            name: "query getMailbox",
            seed: crate::rng::array("request-signature/group key"),
            method: DsMethod::GetMailbox,
            mailbox: group2,
            timestamp: 1_800_000_123_999,
            nonce: crate::rng::array("request-signature/nonce 3"),
            content: Content::Query(format!("mailbox={group2}")),
        },
        Case {
            name: "query listInbox with the owner key",
            seed: crate::rng::array("request-signature/owner key"),
            method: DsMethod::ListInbox,
            mailbox: inbox,
            timestamp: 1_800_000_200_000,
            nonce: crate::rng::array("request-signature/nonce 4"),
            content: Content::Query(format!("inbox={inbox}&cursor=0&limit=50")),
        },
        Case {
            name: "procedure deleteInboxItems with the owner key",
            seed: crate::rng::array("request-signature/owner key"),
            method: DsMethod::DeleteInboxItems,
            mailbox: inbox,
            timestamp: 1_800_000_200_001,
            nonce: crate::rng::array("request-signature/nonce 5"),
            content: Content::Body(format!("{{\"inbox\":\"{inbox}\",\"seqs\":[3,4]}}")),
        },
        Case {
            name: "subscription subscribeEnvelopes: auth removed from the signed query",
            seed: crate::rng::array("request-signature/group key"),
            method: DsMethod::SubscribeEnvelopes,
            mailbox: group2,
            timestamp: 1_800_000_300_000,
            nonce: crate::rng::array("request-signature/nonce 6"),
            content: Content::Subscription {
                query: format!("mailbox={group2}&cursor=7"),
                auth_at: 1,
            },
        },
    ];
    let vectors = cases.into_iter().map(vector).collect::<Result<_, _>>()?;
    Ok(topic_file(
        TOPIC,
        "docs/spec.md §9.4",
        "publicKey = Ed25519 public key of `seed`. signingBytes = \"chat.mls/ds/v1 request\" || \
         0x00 || u8 len(method) || method || raw mailbox id (32) || publicKey || timestampMs \
         (u64 BE) || nonce (16) || SHA-256(content), content being `body` (procedure), `query` \
         (query) or `signedContent` = `subscriptionQuery` without its auth components \
         (subscription). signature = Ed25519(seed, signingBytes). token = base64url without \
         padding of publicKey || timestampMs || nonce || signature; authorization = \
         \"ChatMls-Mailbox \" || token. In a subscription the auth component of \
         `subscriptionQuery` is `auth=<token>`.",
        vectors,
    ))
}
