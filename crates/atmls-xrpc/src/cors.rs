//! Cross-origin requests: a browser device served from one origin calls other origins'
//! services — the recipient's delivery service (`sendWelcome`, `getKeyPackages`), its own
//! DS when the page is elsewhere, DID documents. Every response allows any origin
//! (`Access-Control-Allow-Origin: *`), as the official PDS does: authority here is a bearer
//! token or a signed request in a header, never a cookie, so a foreign page gains nothing it
//! could not do without a browser. A preflight (`OPTIONS` with
//! `Access-Control-Request-Method`) is answered 204 with the methods served and the request
//! headers asked for, when they are well-formed header names.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD,
    HeaderMap, HeaderValue, VARY,
};
use hyper::{Method, Response, StatusCode};

/// The methods any route here answers.
const METHODS: &str = "GET, HEAD, POST";
/// How long a browser may cache a preflight answer, in seconds.
const MAX_AGE: &str = "7200";
/// The most request-header text echoed back.
const MAX_HEADERS_LEN: usize = 1024;

/// The answer to a preflight request, or `None` when `method`/`headers` are not one.
pub(crate) fn preflight(method: &Method, headers: &HeaderMap) -> Option<Response<Full<Bytes>>> {
    if method != Method::OPTIONS || !headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD) {
        return None;
    }
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    let h = response.headers_mut();
    h.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(METHODS),
    );
    h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
    h.insert(
        VARY,
        HeaderValue::from_static("Access-Control-Request-Headers"),
    );
    if let Some(asked) = headers
        .get(ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= MAX_HEADERS_LEN && header_list(v))
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        h.insert(ACCESS_CONTROL_ALLOW_HEADERS, asked);
    }
    allow_any_origin(&mut response);
    Some(response)
}

/// Adds `Access-Control-Allow-Origin: *`.
pub(crate) fn allow_any_origin<B>(response: &mut Response<B>) {
    response
        .headers_mut()
        .insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
}

/// A comma-separated list of header names (RFC 9110 tokens).
fn header_list(text: &str) -> bool {
    text.split(',').map(str::trim).all(|name| {
        !name.is_empty()
            && name.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(
                        b,
                        b'!' | b'#'
                            | b'$'
                            | b'%'
                            | b'&'
                            | b'\''
                            | b'*'
                            | b'+'
                            | b'-'
                            | b'.'
                            | b'^'
                            | b'_'
                            | b'`'
                            | b'|'
                            | b'~'
                    )
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_real_preflight_is_answered() {
        let mut h = HeaderMap::new();
        assert!(preflight(&Method::OPTIONS, &h).is_none());
        h.insert(
            ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("POST"),
        );
        assert!(preflight(&Method::GET, &h).is_none());
        let r = preflight(&Method::OPTIONS, &h).unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        assert_eq!(r.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(!r.headers().contains_key(ACCESS_CONTROL_ALLOW_HEADERS));
    }

    #[test]
    fn asked_headers_are_echoed_only_when_well_formed() {
        let mut h = HeaderMap::new();
        h.insert(
            ACCESS_CONTROL_REQUEST_METHOD,
            HeaderValue::from_static("POST"),
        );
        h.insert(
            ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("authorization, content-type, atproto-proxy"),
        );
        let r = preflight(&Method::OPTIONS, &h).unwrap();
        assert_eq!(
            r.headers()[ACCESS_CONTROL_ALLOW_HEADERS],
            "authorization, content-type, atproto-proxy"
        );
        h.insert(
            ACCESS_CONTROL_REQUEST_HEADERS,
            HeaderValue::from_static("x-a, bad header"),
        );
        let r = preflight(&Method::OPTIONS, &h).unwrap();
        assert!(!r.headers().contains_key(ACCESS_CONTROL_ALLOW_HEADERS));
    }
}
