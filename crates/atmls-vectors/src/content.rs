//! `content.json`: `chat.mls.content` objects of every body type in DAG-CBOR
//! (docs/spec.md §5, §11.6) as the client's `content::encode` writes them, an unknown body
//! type kept through `content::decode`, and an encrypted attachment (§11.7) opened by the
//! client's `attachment::open`.

use aes_gcm::aead::{Aead as _, KeyInit as _};
use aes_gcm::{Aes256Gcm, Nonce};
use atmls_client::content::{self, Body, ContentData, padded_len};
use atmls_lexicon::chat::mls::content as lex;
use atrium_api::types::{CidLink, Union};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::hex::hex;
use crate::{VectorError, VectorFile, fail, topic_file};

const TOPIC: &str = "content.json";

const ID: &str = "a7kq2mxv4zt3nw5rhb6cjd2pfe";
const TARGET: &str = "b2kq2mxv4zt3nw5rhb6cjd2pfe";

/// `{"content": JSON form, "dagCbor"}`, checking that the client decodes it back.
fn encoded(name: &str, body: Body, fallback: Option<&str>) -> Result<Value, VectorError> {
    let content: content::Content = ContentData {
        body: Union::Refs(body),
        fallback_text: fallback.map(str::to_owned),
        id: ID.into(),
        sent_at: "2026-11-24T12:00:00.000Z"
            .parse()
            .map_err(|e| fail(TOPIC, format!("{e:?}")))?,
    }
    .into();
    let bytes = content::encode(&content).map_err(|e| fail(TOPIC, e))?;
    if content::decode(&bytes).as_ref() != Ok(&content) {
        return Err(fail(TOPIC, format!("{name}: does not decode back")));
    }
    vector_of(name, &bytes)
}

fn vector_of(name: &str, bytes: &[u8]) -> Result<Value, VectorError> {
    let ipld = atmls_repo::cbor::decode_ipld(bytes).map_err(|e| fail(TOPIC, e))?;
    let json = atmls_repo::json::from_ipld(&ipld).map_err(|e| fail(TOPIC, e))?;
    Ok(json!({ "name": name, "content": json, "dagCbor": hex(bytes) }))
}

fn unknown_body() -> Result<Value, VectorError> {
    let value = json!({
        "$type": "chat.mls.content",
        "id": ID,
        "sentAt": "2026-11-24T12:00:00.000Z",
        "body": { "$type": "com.example.poll", "question": "tea or coffee?", "options": 2 },
        "fallbackText": "A poll: tea or coffee?",
    });
    let ipld = atmls_repo::json::record_to_ipld(&value).map_err(|e| fail(TOPIC, e))?;
    let bytes = atmls_repo::cbor::encode(&ipld).map_err(|e| fail(TOPIC, e))?;
    let decoded = content::decode(&bytes).map_err(|e| fail(TOPIC, e))?;
    let again = content::encode(&decoded).map_err(|e| fail(TOPIC, e))?;
    if again != bytes {
        return Err(fail(
            TOPIC,
            "an unknown body does not survive decode/encode",
        ));
    }
    vector_of("unknown body type (open union), kept as is", &again)
}

fn attachment() -> Result<Value, VectorError> {
    let file = b"hello, this is a small text file for the attachment vector\n".to_vec();
    let key: [u8; 32] = crate::rng::array("content/attachment/key");
    let nonce: [u8; 12] = crate::rng::array("content/attachment/nonce");
    let mut padded = file.clone();
    padded.resize(padded_len(file.len(), usize::MAX), 0);
    let ciphertext = Aes256Gcm::new(&key.into())
        .encrypt(Nonce::from_slice(&nonce), padded.as_slice())
        .map_err(|_| fail(TOPIC, "attachment encryption"))?;
    let data = lex::AttachmentData {
        alt: Some("a text file".into()),
        cipher: atmls_client::attachment::CIPHER.into(),
        digest: Sha256::digest(&ciphertext).to_vec().into(),
        key: key.to_vec().into(),
        location: lex::BlobLocationData {
            cid: CidLink(atmls_repo::cid::raw(&ciphertext)),
            did: crate::records::DID
                .parse()
                .map_err(|e| fail(TOPIC, format!("{e:?}")))?,
        }
        .into(),
        mime_type: "text/plain".into(),
        name: Some("hello.txt".into()),
        nonce: nonce.to_vec().into(),
        size: i64::try_from(file.len()).map_err(|e| fail(TOPIC, e))?,
    };
    if atmls_client::attachment::open(&data, &ciphertext).map_err(|e| fail(TOPIC, e))? != file {
        return Err(fail(TOPIC, "the attachment does not open"));
    }
    let mut v = encoded(
        "#attachment (with its file, padded and encrypted)",
        Body::Attachment(Box::new(data.into())),
        Some("[attachment: hello.txt]"),
    )?;
    v["file"] = json!(hex(&file));
    v["ciphertext"] = json!(hex(&ciphertext));
    Ok(v)
}

pub(crate) fn file() -> Result<VectorFile, VectorError> {
    let langs = vec!["en".parse().map_err(|e| fail(TOPIC, format!("{e:?}")))?];
    let vectors = vec![
        encoded("#text", content::text("hello 👋"), None)?,
        encoded(
            "#text with langs",
            Body::Text(Box::new(
                lex::TextData {
                    langs: Some(langs.clone()),
                    text: "good morning".into(),
                }
                .into(),
            )),
            None,
        )?,
        encoded("#reply", content::reply(TARGET, "yes, at five"), None)?,
        encoded(
            "#reaction",
            content::reaction(TARGET, "👍🏽"),
            Some("reacted 👍🏽"),
        )?,
        encoded(
            "#reaction removed",
            Body::Reaction(Box::new(
                lex::ReactionData {
                    remove: Some(true),
                    target: TARGET.into(),
                    value: "👍🏽".into(),
                }
                .into(),
            )),
            None,
        )?,
        encoded(
            "#readReceipt",
            content::read_receipt(vec![TARGET.into(), "c3kq2mxv4zt3nw5rhb6cjd2pfe".into()]),
            None,
        )?,
        encoded(
            "#edit",
            content::edit(TARGET, "yes, at six"),
            Some("edited: yes, at six"),
        )?,
        encoded(
            "#delete",
            content::delete(TARGET),
            Some("deleted a message"),
        )?,
        attachment()?,
        unknown_body()?,
    ];
    Ok(topic_file(
        TOPIC,
        "docs/spec.md §5, §11.6, §11.7",
        "dagCbor = canonical DAG-CBOR of `content` (JSON form: $bytes -> byte string, \
         $link -> tag 42). The attachment vector also gives the file: ciphertext = \
         AES-256-GCM(key, nonce, aad = \"\", file followed by zeros up to its size bucket), \
         digest = SHA-256(ciphertext), size = file length, location.cid = CIDv1 (raw, \
         sha2-256) of ciphertext.",
        vectors,
    ))
}
