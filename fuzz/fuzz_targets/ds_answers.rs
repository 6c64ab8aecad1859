//! Every DS answer a client decodes never panics, and what decodes re-encodes to a body
//! that decodes to the same value: the JSON outputs of each method, error bodies, and
//! `subscribeEnvelopes` frames (`atmls-ds-proto`'s client codec).
#![no_main]

use atmls_ds_proto::codec::{client, server};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = client::create_mailbox_output(data);
    let _ = client::get_mailbox_output(data);
    let _ = client::send_envelopes_output(data);
    let _ = client::send_welcome_output(data);
    let _ = client::delete_inbox_items_output(data);
    let _ = client::describe_server_output(data);
    let _ = client::get_key_packages_output(data);
    let _ = client::error_body(data);
    let _ = client::frame(data);
    if let Ok(page) = client::get_envelopes_output(data) {
        let again = serde_json::to_vec(&server::get_envelopes_output(&page)).expect("encodes");
        assert_eq!(client::get_envelopes_output(&again), Ok(page));
    }
    if let Ok(page) = client::list_inbox_output(data) {
        let again = serde_json::to_vec(&server::list_inbox_output(&page)).expect("encodes");
        assert_eq!(client::list_inbox_output(&again), Ok(page));
    }
});
