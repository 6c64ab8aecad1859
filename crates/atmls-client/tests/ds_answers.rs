//! What the HTTP transport does with DS answers whose fields do not decode: each is a
//! `Malformed` error (permanent), never a default value. One canned answer per request,
//! from a loopback server that answers every request with the same body.

use std::sync::Arc;
use std::time::Duration;

use atmls_client::transport::Ds as _;
use atmls_client::transport::http::HttpDs;
use atmls_client::{Did, TransportError};
use atmls_ds_proto::MailboxId;
use atmls_identity::DidResolver;
use atmls_identity::resolve::{HttpResolver, ResolverConfig};
use ed25519_dalek::SigningKey;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A loopback server answering every request with `status` and the JSON `body`, for at
/// most `requests` requests; its base URL.
async fn canned(status: u16, body: &'static str, requests: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        for _ in 0..requests {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            // Read the request head and a body of at most a few KB.
            let mut buf = vec![0u8; 16 * 1024];
            let _ = tokio::time::timeout(Duration::from_millis(200), socket.read(&mut buf)).await;
            let answer = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    url
}

fn ds_at(url: &str) -> (HttpDs, Did) {
    let resolver: Arc<dyn DidResolver> = Arc::new(HttpResolver::new(
        ResolverConfig::default().allow_loopback_http(true),
    ));
    let did = Did::new("did:web:ds.test".to_owned()).unwrap();
    (HttpDs::new(resolver).with_endpoint(did.clone(), url), did)
}

fn mailbox() -> MailboxId {
    MailboxId::from_bytes([3; 32])
}

/// Issue 15: an unparsable `receivedAt` became 1970-01-01 — a welcome "received" then
/// passes every KeyPackage expiry check (spec §11.13). It must be refused instead.
#[tokio::test]
async fn an_unparsable_received_at_is_malformed_not_1970() {
    for received_at in ["yesterday", "", "2027-13-45T99:00:00.000Z"] {
        let body: &'static str = Box::leak(
            format!(
                r#"{{"items":[{{"seq":1,"kind":"welcome","payload":{{"$bytes":"aGk"}},"receivedAt":"{received_at}"}}],"cursor":1}}"#
            )
            .into_boxed_str(),
        );
        let (ds, did) = ds_at(&canned(200, body, 1).await);
        let key = SigningKey::from_bytes(&[9; 32]);
        let answer = ds.list_inbox(&did, &mailbox(), &key, 0).await;
        match answer {
            Err(TransportError::Malformed(_)) => {}
            other => panic!("receivedAt {received_at:?}: {other:?}"),
        }
    }
}

/// A page whose `seq` is negative, whose `kind` is unknown, or which lacks `cursor`.
#[tokio::test]
async fn bad_envelope_fields_are_malformed() {
    for body in [
        r#"{"envelopes":[{"seq":-1,"kind":"message","payload":{"$bytes":"aGk"},"receivedAt":"2027-01-15T08:00:00.000Z"}],"cursor":1,"headSeq":1,"epoch":0}"#,
        r#"{"envelopes":[{"seq":1,"kind":"poll","payload":{"$bytes":"aGk"},"receivedAt":"2027-01-15T08:00:00.000Z"}],"cursor":1,"headSeq":1,"epoch":0}"#,
        r#"{"envelopes":[],"headSeq":1,"epoch":0}"#,
    ] {
        let (ds, did) = ds_at(&canned(200, body, 1).await);
        let key = SigningKey::from_bytes(&[9; 32]);
        let answer = ds.envelopes(&did, &mailbox(), &key, 0).await;
        assert!(
            matches!(answer, Err(TransportError::Malformed(_))),
            "{body}: {answer:?}"
        );
    }
}

/// `EpochConflict` is typed with its fields; without them it is malformed, not a bare
/// conflict the client would retry blindly.
#[tokio::test]
async fn epoch_conflict_answers_are_typed() {
    let (ds, did) = ds_at(
        &canned(
            409,
            r#"{"error":"EpochConflict","message":"mailbox is at epoch 5","currentEpoch":5,"currentSeq":311}"#,
            1,
        )
        .await,
    );
    let key = SigningKey::from_bytes(&[9; 32]);
    let commit = atmls_ds_proto::OutgoingEnvelope::commit(4, b"c".to_vec(), [1; 32]);
    let answer = ds
        .send_envelopes(&did, &mailbox(), &key, vec![commit])
        .await;
    assert_eq!(
        answer,
        Err(TransportError::EpochConflict {
            current_epoch: 5,
            current_seq: 311
        })
    );

    let (ds, did) = ds_at(&canned(409, r#"{"error":"EpochConflict","message":"x"}"#, 1).await);
    let commit = atmls_ds_proto::OutgoingEnvelope::commit(4, b"c".to_vec(), [1; 32]);
    let answer = ds
        .send_envelopes(&did, &mailbox(), &key, vec![commit])
        .await;
    assert!(
        matches!(answer, Err(TransportError::Malformed(_))),
        "{answer:?}"
    );
}
