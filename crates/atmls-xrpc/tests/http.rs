//! Routing, validation, typed errors, limits, health and metrics through a real server.

mod common;

use std::time::Duration;

use atmls_xrpc::{HttpRequest, Router, StatusCode, XrpcError, XrpcRequest, XrpcResponse, header};
use bytes::Bytes;
use common::*;
use http_body_util::Full;
use hyper::Request;
use serde_json::{Value, json};

async fn search(req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    // Echo the typed parameters back in a header-free way: count = limit or 0.
    let limit = req.param_i64("limit").unwrap_or(0);
    let tags = req.params().get("tag").cloned().unwrap_or(Value::Null);
    let reverse = req.param_bool("reverse");
    Ok(XrpcResponse::json(json!({ "count": limit }))
        .with_header(
            header::HeaderName::from_static("x-tags"),
            header::HeaderValue::from_str(&tags.to_string()).unwrap(),
        )
        .with_header(
            header::HeaderName::from_static("x-reverse"),
            header::HeaderValue::from_str(&format!("{reverse:?}")).unwrap(),
        ))
}

async fn echo(req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    #[derive(serde::Deserialize)]
    struct In {
        text: String,
    }
    let input: In = req.input_as()?;
    Ok(XrpcResponse::json(json!({ "text": input.text })))
}

/// Fails as the `x-fail` header says.
async fn ping(req: XrpcRequest) -> Result<XrpcResponse, XrpcError> {
    match req.header("x-fail").unwrap_or("") {
        "" => Ok(XrpcResponse::json(json!({}))),
        "auth" => Err(XrpcError::auth_required("no token")),
        "expired" => Err(XrpcError::expired_token("token expired")),
        "invalid" => Err(XrpcError::invalid_token("bad token")),
        "forbidden" => Err(XrpcError::forbidden("Forbidden", "not yours")),
        "notfound" => Err(XrpcError::not_found("RecordNotFound", "no record")),
        "conflict" => Err(XrpcError::conflict("EpochConflict", "stale epoch")
            .with_field("currentEpoch", 4)
            .with_field("currentSeq", 17)),
        "ratelimit" => Err(XrpcError::rate_limit_exceeded("slow down")),
        "internal" => Err(XrpcError::internal("broken")),
        "panic" => panic!("handler panicked on purpose"),
        "badoutput" => Ok(XrpcResponse::json(json!({ "extra": 1.5 }))),
        other => Err(XrpcError::invalid_request(format!(
            "unknown x-fail {other}"
        ))),
    }
}

fn router() -> Router {
    Router::new(catalog())
        .query("com.example.search", search)
        .procedure("com.example.echo", echo)
        .query("com.example.ping", ping)
        .procedure("com.example.touch", |req: XrpcRequest| async move {
            assert!(req.body().is_empty());
            Ok(XrpcResponse::empty())
        })
        .procedure("com.example.upload", |req: XrpcRequest| async move {
            Ok(XrpcResponse::json(json!({ "size": req.body().len() })))
        })
        .body_limit("com.example.upload", 8192)
        .subscription("com.example.stream", |_req, _sink| async { Ok(()) })
}

fn with_fallback(router: Router) -> Router {
    router.fallback(|req: HttpRequest| async move {
        match (req.method().as_str(), req.path()) {
            ("GET", "/.well-known/did.json") => {
                Ok(XrpcResponse::json(json!({ "id": "did:web:localhost" })))
            }
            ("GET", p) if p.starts_with("/did:") => {
                Ok(XrpcResponse::json(json!({ "id": &p[1..] })))
            }
            _ => Err(XrpcError::not_found("NotFound", "no such path")),
        }
    })
}

#[tokio::test]
async fn health_reports_the_version() {
    let server = start(router(), config()).await;
    let r = get(server.local_addr(), "/_health").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({ "version": "test-1" }));
    let r = post(server.local_addr(), "/_health", "application/json", "{}").await;
    r.assert_error(405, "InvalidRequest");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn routes_by_nsid_and_verb() {
    let server = start(router(), config()).await;
    let addr = server.local_addr();

    let r = get(addr, "/xrpc/com.example.search?q=hi&limit=5").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({ "count": 5 }));

    let r = post_json(addr, "/xrpc/com.example.echo", &json!({ "text": "hello" })).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({ "text": "hello" }));

    let msg = get(addr, "/xrpc/com.example.echo")
        .await
        .assert_error(405, "InvalidRequest");
    assert!(msg.contains("POST"), "{msg}");
    post_json(addr, "/xrpc/com.example.search?q=x", &json!({}))
        .await
        .assert_error(405, "InvalidRequest");
    let msg = get(addr, "/xrpc/com.example.stream")
        .await
        .assert_error(405, "InvalidRequest");
    assert!(msg.contains("WebSocket"), "{msg}");

    let msg = get(addr, "/xrpc/com.example.nothing")
        .await
        .assert_error(501, "MethodNotImplemented");
    assert!(msg.contains("com.example.nothing"));
    get(addr, "/xrpc/not-an-nsid")
        .await
        .assert_error(501, "MethodNotImplemented");
    get(addr, "/xrpc/")
        .await
        .assert_error(501, "MethodNotImplemented");
    get(addr, "/elsewhere").await.assert_error(404, "NotFound");

    let r = post(addr, "/xrpc/com.example.touch", "application/json", "").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn fallback_serves_other_paths() {
    let server = start(with_fallback(router()), config()).await;
    let addr = server.local_addr();
    let r = get(addr, "/.well-known/did.json").await;
    assert_eq!(r.json(), json!({ "id": "did:web:localhost" }));
    let r = get(addr, "/did:plc:abc").await;
    assert_eq!(r.json(), json!({ "id": "did:plc:abc" }));
    get(addr, "/nope").await.assert_error(404, "NotFound");
    // XRPC, health and metrics are not given to the fallback.
    get(addr, "/xrpc/com.example.nothing")
        .await
        .assert_error(501, "MethodNotImplemented");
    assert_eq!(get(addr, "/_health").await.status, StatusCode::OK);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn params_are_typed_and_validated() {
    let server = start(router(), config()).await;
    let addr = server.local_addr();

    let r = get(
        addr,
        "/xrpc/com.example.search?q=a+b&tag=x&tag=y%20z&reverse=true",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["x-tags"], r#"["x","y z"]"#);
    assert_eq!(r.headers["x-reverse"], "Some(true)");

    let msg = get(addr, "/xrpc/com.example.search")
        .await
        .assert_error(400, "InvalidRequest");
    assert_eq!(msg, "params/q: required field is missing");
    let msg = get(addr, "/xrpc/com.example.search?q=a&limit=0")
        .await
        .assert_error(400, "InvalidRequest");
    assert_eq!(msg, "params/limit: must be at least 1");
    let msg = get(addr, "/xrpc/com.example.search?q=a&limit=ten")
        .await
        .assert_error(400, "InvalidRequest");
    assert!(msg.starts_with("params/limit"), "{msg}");
    let msg = get(addr, "/xrpc/com.example.search?q=a&reverse=yes")
        .await
        .assert_error(400, "InvalidRequest");
    assert!(msg.starts_with("params/reverse"), "{msg}");
    let msg = get(addr, "/xrpc/com.example.search?q=a&tag=1&tag=2&tag=3&tag=4")
        .await
        .assert_error(400, "InvalidRequest");
    assert!(msg.starts_with("params/tag"), "{msg}");
    let msg = get(addr, "/xrpc/com.example.search?q=%ff")
        .await
        .assert_error(400, "InvalidRequest");
    assert!(msg.contains("UTF-8"), "{msg}");
    get(addr, "/xrpc/com.example.search?q=%zz")
        .await
        .assert_error(400, "InvalidRequest");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn json_bodies_are_parsed_and_validated() {
    let server = start(router(), config()).await;
    let addr = server.local_addr();
    let path = "/xrpc/com.example.echo";

    let msg = post(addr, path, "application/json", "{\"text\": ")
        .await
        .assert_error(400, "InvalidRequest");
    assert!(msg.contains("malformed JSON"), "{msg}");
    let msg = post(addr, path, "text/plain", "{\"text\":\"a\"}")
        .await
        .assert_error(400, "InvalidRequest");
    assert!(msg.contains("Content-Type"), "{msg}");
    let msg = post(addr, path, "application/json", "")
        .await
        .assert_error(400, "InvalidRequest");
    assert!(msg.contains("body is required"), "{msg}");
    let msg = post_json(addr, path, &json!({ "text": "far too long text" }))
        .await
        .assert_error(400, "InvalidRequest");
    assert_eq!(msg, "input/text: must not be longer than 10 bytes");
    let msg = post_json(addr, path, &json!({ "text": "a", "n": 1.5 }))
        .await
        .assert_error(400, "InvalidRequest");
    assert!(msg.starts_with("input/n"), "{msg}");
    let msg = post_json(addr, path, &json!({}))
        .await
        .assert_error(400, "InvalidRequest");
    assert_eq!(msg, "input/text: required field is missing");
    // Charset parameters are fine.
    let r = post(
        addr,
        path,
        "application/json; charset=utf-8",
        "{\"text\":\"ok\"}",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    // A body where the lexicon declares none.
    let msg = post(addr, "/xrpc/com.example.touch", "application/json", "{}")
        .await
        .assert_error(400, "InvalidRequest");
    assert!(msg.contains("no request body"), "{msg}");
    // Any content type for */* inputs; the raw bytes reach the handler.
    let r = post(
        addr,
        "/xrpc/com.example.upload",
        "image/png",
        vec![7u8; 100],
    )
    .await;
    assert_eq!(r.json(), json!({ "size": 100 }));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn handler_errors_keep_their_status_and_shape() {
    let server = start(router(), config()).await;
    let addr = server.local_addr();
    let cases = [
        ("auth", 401, "AuthRequired"),
        ("expired", 401, "ExpiredToken"),
        ("invalid", 401, "InvalidToken"),
        ("forbidden", 403, "Forbidden"),
        ("notfound", 404, "RecordNotFound"),
        ("conflict", 409, "EpochConflict"),
        ("ratelimit", 429, "RateLimitExceeded"),
        ("internal", 500, "InternalServerError"),
    ];
    for (fail, status, name) in cases {
        let req = Request::get("/xrpc/com.example.ping")
            .header("host", "localhost")
            .header("x-fail", fail)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let r = send(addr, req).await;
        r.assert_error(status, name);
        if fail == "conflict" {
            assert_eq!(
                r.json(),
                json!({ "error": "EpochConflict", "message": "stale epoch", "currentEpoch": 4, "currentSeq": 17 })
            );
        }
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_server_goes_on() {
    let server = start(router(), config()).await;
    let addr = server.local_addr();
    let req = Request::get("/xrpc/com.example.ping")
        .header("host", "localhost")
        .header("x-fail", "panic")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let msg = send(addr, req)
        .await
        .assert_error(500, "InternalServerError");
    assert!(
        !msg.contains("on purpose"),
        "panic text must not leak: {msg}"
    );
    assert_eq!(
        get(addr, "/xrpc/com.example.ping").await.status,
        StatusCode::OK
    );
    assert_eq!(server.metrics().requests("com.example.ping", 500), 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn outputs_failing_their_lexicon_are_500_when_checked() {
    let bad = || {
        Request::get("/xrpc/com.example.ping")
            .header("host", "localhost")
            .header("x-fail", "badoutput")
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let server = start(router(), config()).await;
    let msg = send(server.local_addr(), bad())
        .await
        .assert_error(500, "InternalServerError");
    assert!(msg.contains("output"), "{msg}");
    server.shutdown().await.unwrap();

    let server = start(router(), config().with_validate_output(false)).await;
    assert_eq!(
        send(server.local_addr(), bad()).await.status,
        StatusCode::OK
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn oversized_bodies_are_refused_while_streaming() {
    let server = start(router(), config().with_max_body_bytes(1024)).await;
    let addr = server.local_addr();
    let big = json!({ "text": "x".repeat(2000) }).to_string();

    // Announced by Content-Length.
    let r = post(
        addr,
        "/xrpc/com.example.echo",
        "application/json",
        big.clone(),
    )
    .await;
    let msg = r.assert_error(413, "PayloadTooLarge");
    assert!(msg.contains("1024"), "{msg}");
    assert_eq!(r.headers["connection"], "close");

    // Chunked, with no length announced: refused once 1024 bytes have streamed in.
    let chunked = format!(
        "POST /xrpc/com.example.echo HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         transfer-encoding: chunked\r\n\r\n{:x}\r\n{big}\r\n0\r\n\r\n",
        big.len()
    );
    let text = raw(addr, chunked.as_bytes()).await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("\"PayloadTooLarge\""), "{text}");

    // A route with its own limit.
    let r = post(
        addr,
        "/xrpc/com.example.upload",
        "application/octet-stream",
        vec![0u8; 4096],
    )
    .await;
    assert_eq!(r.json(), json!({ "size": 4096 }));
    post(
        addr,
        "/xrpc/com.example.upload",
        "application/octet-stream",
        vec![0u8; 9000],
    )
    .await
    .assert_error(413, "PayloadTooLarge");

    // The server keeps working.
    let r = post_json(addr, "/xrpc/com.example.echo", &json!({ "text": "small" })).await;
    assert_eq!(r.status, StatusCode::OK);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn oversized_and_malformed_heads_are_refused() {
    let server = start(router(), config().with_max_header_bytes(8192)).await;
    let addr = server.local_addr();
    let huge = format!(
        "GET /_health HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let text = raw(addr, huge.as_bytes()).await;
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431"),
        "{text}"
    );
    let text = raw(addr, b"NONSENSE\r\n\r\n").await;
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 400"),
        "{text}"
    );
    assert_eq!(get(addr, "/_health").await.status, StatusCode::OK);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn proxied_requests_go_to_the_proxy_handler() {
    let router = router().proxy(|req: XrpcRequest| async move {
        Ok(XrpcResponse::json(json!({
            "proxied": req.nsid().as_str(),
            "to": req.header("atproto-proxy"),
            "q": req.query_string(),
        })))
    });
    let server = start(router, config()).await;
    let req = Request::get("/xrpc/chat.mls.ds.getMailbox?mailbox=abc")
        .header("host", "localhost")
        .header("atproto-proxy", "did:web:ds.example#chat_mls_ds")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = send(server.local_addr(), req).await;
    assert_eq!(
        r.json(),
        json!({ "proxied": "chat.mls.ds.getMailbox", "to": "did:web:ds.example#chat_mls_ds", "q": "mailbox=abc" })
    );
    assert_eq!(server.metrics().requests("_proxy", 200), 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let server = start(router(), config()).await;
    let addr = server.local_addr();
    for _ in 0..3 {
        get(addr, "/xrpc/com.example.search?q=a").await;
    }
    get(addr, "/xrpc/com.example.search").await;
    get(addr, "/xrpc/com.example.unknown").await;
    let r = get(addr, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text; version=1.0.0")
    );
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    for line in [
        "atmls_xrpc_requests_total{nsid=\"com.example.search\",status=\"200\"} 3",
        "atmls_xrpc_requests_total{nsid=\"com.example.search\",status=\"400\"} 1",
        "atmls_xrpc_requests_total{nsid=\"_unrouted\",status=\"501\"} 1",
        "atmls_xrpc_errors_total{nsid=\"com.example.search\",error=\"InvalidRequest\"} 1",
        "atmls_xrpc_errors_total{nsid=\"_unrouted\",error=\"MethodNotImplemented\"} 1",
        "atmls_xrpc_request_duration_seconds_bucket{le=\"+Inf\",nsid=\"com.example.search\"} 4",
        "atmls_xrpc_request_duration_seconds_count{nsid=\"com.example.search\"} 4",
        // The scrape itself is in flight.
        "atmls_xrpc_requests_in_flight 1",
        "atmls_xrpc_subscriptions_open 0",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(
        !text.contains("com.example.unknown"),
        "client strings must not become labels"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_slow_handler_times_out_with_504() {
    let router = router().query("com.example.ping", |_req| async {
        std::future::pending::<()>().await;
        Ok(XrpcResponse::empty())
    });
    // Mounting com.example.ping twice is an error caught at bind time.
    assert!(atmls_xrpc::Server::bind(config(), router).await.is_err());

    let router = Router::new(catalog()).query("com.example.ping", |_req| async {
        std::future::pending::<()>().await;
        Ok(XrpcResponse::empty())
    });
    let server = start(
        router,
        config().with_request_timeout(Duration::from_millis(200)),
    )
    .await;
    let msg = get(server.local_addr(), "/xrpc/com.example.ping")
        .await
        .assert_error(504, "RequestTimeout");
    assert!(msg.contains("200 ms"), "{msg}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_static_folder_is_served_from_memory_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<!doctype html><p>hi").unwrap();
    std::fs::write(dir.path().join("app.js"), "console.log(1)").unwrap();
    std::fs::write(dir.path().join(".secret"), "key").unwrap();
    let page = atmls_xrpc::StaticDir::read(dir.path()).unwrap();
    let router = page.mount(router(), "/web").unwrap();
    // A file written after start is not served: the set is read once.
    std::fs::write(dir.path().join("late.js"), "x").unwrap();
    let server = start(router, config()).await;
    let addr = server.local_addr();

    let index = get(addr, "/web/").await;
    assert_eq!(index.status, StatusCode::OK);
    assert_eq!(index.body, Bytes::from_static(b"<!doctype html><p>hi"));
    assert_eq!(index.headers["content-type"], "text/html; charset=utf-8");
    assert!(
        index.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert_eq!(index.headers["x-content-type-options"], "nosniff");
    assert_eq!(get(addr, "/web/index.html").await.body, index.body);

    let js = get(addr, "/web/app.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert_eq!(js.headers["content-type"], "text/javascript; charset=utf-8");
    assert!(!js.headers.contains_key("content-security-policy"));

    for path in [
        "/web/.secret",
        "/web/late.js",
        "/web/../Cargo.toml",
        "/web",
        "/web/x/app.js",
    ] {
        get(addr, path).await.assert_error(404, "NotFound");
    }
    assert_eq!(
        post(addr, "/web/app.js", "text/plain", "x").await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn any_origin_may_call_and_preflights_are_answered() {
    let server = start(router(), config()).await;
    let addr = server.local_addr();
    let r = get(addr, "/xrpc/com.example.ping").await;
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    // Errors too: a browser must be able to read the typed error.
    let r = get(addr, "/xrpc/com.example.nothing").await;
    assert_eq!(r.status.as_u16(), 501);
    assert_eq!(r.headers["access-control-allow-origin"], "*");

    let preflight = Request::builder()
        .method("OPTIONS")
        .uri("/xrpc/com.example.echo")
        .header("host", "localhost")
        .header("origin", "http://127.0.0.1:9")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = atmls_testkit::http::send(addr, preflight).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    assert_eq!(r.headers["access-control-allow-methods"], "GET, HEAD, POST");
    assert_eq!(
        r.headers["access-control-allow-headers"],
        "authorization, content-type"
    );
    // A bare OPTIONS is no preflight: it is routed as usual (and refused).
    let bare = Request::builder()
        .method("OPTIONS")
        .uri("/xrpc/com.example.echo")
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = atmls_testkit::http::send(addr, bare).await;
    assert_ne!(r.status, StatusCode::NO_CONTENT);
    server.shutdown().await.unwrap();
}
