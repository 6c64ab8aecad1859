//! `subscribeEnvelopes` from both ends never panics: the frames a client decodes (DAG-CBOR
//! header and body, `#envelope` messages included) and the query a server parses (the
//! lexicon's params, mailbox ids, per-mailbox `auth` tokens, the signed content).
#![no_main]

use std::str::FromStr as _;
use std::sync::OnceLock;

use atmls_ds::MailboxId;
use atmls_ds::auth::{RequestToken, subscription_content};
use atmls_xrpc::{Catalog, Frame, Nsid};
use libfuzzer_sys::fuzz_target;

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| atmls_ds_xrpc::catalog().expect("embedded lexicons"))
}

fuzz_target!(|data: &[u8]| {
    // Frames, as a subscriber reads them.
    let _ = Frame::decode::<ipld_core::ipld::Ipld>(data);
    let _ = Frame::decode::<serde_json::Value>(data);

    // The query string, as the server reads it.
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let pairs: Vec<(&str, &str)> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let nsid = Nsid::from_str("chat.mls.ds.subscribeEnvelopes").expect("nsid");
    if let Ok(params) = catalog().params_from_query(&nsid, pairs.iter().copied()) {
        let _ = catalog().validate_params(&nsid, &params);
    }
    for (k, v) in &pairs {
        match *k {
            "mailbox" => {
                if let Ok(id) = MailboxId::from_str(v) {
                    assert_eq!(id.to_string(), *v);
                }
            }
            "auth" => {
                let _ = RequestToken::decode(v);
            }
            _ => {}
        }
    }
    let content = subscription_content(query);
    assert!(content.len() <= query.len());
});
