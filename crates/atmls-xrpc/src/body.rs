//! Reading request bodies under a size limit, and decoding query strings.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::HeaderMap;
use hyper::body::Incoming;
use hyper::header::CONTENT_LENGTH;

use crate::error::XrpcError;

/// Reads the whole body, refusing it (413) as soon as more than `limit` bytes have
/// arrived or a `Content-Length` above the limit is announced, without buffering the rest.
pub(crate) async fn read_limited(
    headers: &HeaderMap,
    body: Incoming,
    limit: u64,
) -> Result<Bytes, XrpcError> {
    if let Some(len) = headers.get(CONTENT_LENGTH) {
        let len = len
            .to_str()
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| XrpcError::invalid_request("invalid Content-Length"))?;
        if len > limit {
            return Err(XrpcError::payload_too_large(limit));
        }
    }
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    match Limited::new(body, limit_usize).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(XrpcError::payload_too_large(limit))
        }
        Err(_) => Err(XrpcError::invalid_request("cannot read the request body")),
    }
}

/// Splits and percent-decodes a query string (`+` is a space). Malformed escapes and
/// non-UTF-8 text are refused.
pub(crate) fn query_pairs(query: &str) -> Result<Vec<(String, String)>, XrpcError> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

fn decode(s: &str) -> Result<String, XrpcError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let digit = |at: usize| bytes.get(at).and_then(|b| char::from(*b).to_digit(16));
                let (Some(hi), Some(lo)) = (digit(i + 1), digit(i + 2)) else {
                    return Err(XrpcError::invalid_request(
                        "malformed percent-encoding in the query",
                    ));
                };
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| XrpcError::invalid_request("the query is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_pairs() {
        let pairs = query_pairs("a=1&b=x%20y+z&&c&d=%C3%A9").unwrap();
        let pairs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(pairs, [("a", "1"), ("b", "x y z"), ("c", ""), ("d", "é")]);
    }

    #[test]
    fn refuses_bad_escapes_and_non_utf8() {
        assert!(query_pairs("a=%zz").is_err());
        assert!(query_pairs("a=%4").is_err());
        assert!(query_pairs("a=%ff").is_err());
        assert!(query_pairs("a=%+1").is_err());
    }
}
