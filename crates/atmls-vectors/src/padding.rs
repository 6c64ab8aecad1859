//! `padding.json`: size buckets (docs/spec.md §11.5) from the client's `padded_len`, and
//! padded payloads from its `pad`.

use atmls_client::content::{pad, padded_len};
use serde_json::{Value, json};

use crate::hex::hex;
use crate::{VectorFile, topic_file};

const TOPIC: &str = "padding.json";

fn bucket(length: usize, max: Option<usize>) -> Value {
    let padded = padded_len(length, max.unwrap_or(usize::MAX));
    let mut v = json!({ "name": format!("length {length}"), "length": length });
    if let Some(max) = max {
        v["name"] = json!(format!("length {length}, maxEnvelopeBytes {max}"));
        v["maxEnvelopeBytes"] = json!(max);
    }
    v["paddedLength"] = json!(padded);
    v["paddingBytes"] = json!(padded - length);
    v
}

fn payload(length: usize) -> Value {
    let message = crate::rng::bytes(&format!("padding/{length}"), length);
    let padded = pad(message.clone(), usize::MAX);
    json!({
        "name": format!("payload of {length} bytes"),
        "message": hex(&message),
        "payload": hex(&padded),
    })
}

pub(crate) fn file() -> VectorFile {
    let mut vectors: Vec<Value> = [
        0, 1, 255, 256, 257, 300, 512, 513, 1000, 4096, 4097, 65_535, 65_536, 65_537, 131_072,
        131_073, 1_000_000,
    ]
    .into_iter()
    .map(|n| bucket(n, None))
    .collect();
    // The cap binds only between the length and its bucket; beyond, the object is unpadded.
    vectors.push(bucket(300, Some(400)));
    vectors.push(bucket(70_000, Some(100_000)));
    vectors.push(bucket(1_000_000, Some(1_040_000)));
    vectors.extend([1, 200, 300].into_iter().map(payload));
    topic_file(
        TOPIC,
        "docs/spec.md §11.5",
        "paddedLength = min(bucket(length), maxEnvelopeBytes if given) but at least length, \
         where bucket(n) = 256 if n <= 256, the next power of two if n <= 65536, else the next \
         multiple of 65536; paddingBytes = paddedLength - length. payload = message followed \
         by zero bytes up to bucket(len(message)).",
        vectors,
    )
}
