//! The answer to `COMMIT` is lost on the way back (a proxy between store and server
//! forwards the `COMMIT`, reads the server's reply and closes the client's connection
//! instead of passing it on): the append committed, and the store must say so, not
//! report a failure the caller would retry into a duplicate.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use atmls_ds::EnvelopeKind;
use atmls_ds::store::Store;
use atmls_ds_postgres::{PgConfig, PgStore};
use atmls_testkit::ds_store::{EVERYTHING, batch, group};

use crate::common::{fresh_schema, url};

/// A loopback proxy to the test server. While `trap` is set, the first connection that
/// sends a `COMMIT` loses the server's reply to it (and the trap is cleared).
struct Proxy {
    port: u16,
    trap: Arc<AtomicBool>,
}

fn proxy(upstream: (String, u16)) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("address").port();
    let trap = Arc::new(AtomicBool::new(false));
    let trap2 = trap.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect((upstream.0.as_str(), upstream.1)) else {
                return;
            };
            let armed = Arc::new(AtomicBool::new(false));
            // Client to server: forward everything; arm on a COMMIT while trapped.
            let (mut from, mut to) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (trap, armed2) = (trap2.clone(), armed.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n @ 1..) = from.read(&mut buf) {
                    let chunk = &buf[..n];
                    if chunk.windows(7).any(|w| w == b"COMMIT\0")
                        && trap.swap(false, Ordering::SeqCst)
                    {
                        armed2.store(true, Ordering::SeqCst);
                    }
                    if to.write_all(chunk).is_err() {
                        break;
                    }
                }
                let _ = to.shutdown(Shutdown::Both);
            });
            // Server to client: forward, unless armed: then drop the reply and both
            // connections.
            let (mut from, mut to) = (server, client);
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n @ 1..) = from.read(&mut buf) {
                    if armed.load(Ordering::SeqCst) {
                        break;
                    }
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = to.shutdown(Shutdown::Both);
                let _ = from.shutdown(Shutdown::Both);
            });
        }
    });
    Proxy { port, trap }
}

#[test]
fn a_lost_commit_reply_is_not_a_failure() {
    let direct: tokio_postgres::Config = url().parse().expect("valid URL");
    let host = match direct.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => panic!("the test database is reached over TCP"),
    };
    let port = direct.get_ports().first().copied().unwrap_or(5432);
    let p = proxy((host, port));
    let via_proxy = format!(
        "host=127.0.0.1 port={} user={} password={} dbname={}",
        p.port,
        direct.get_user().expect("a user"),
        String::from_utf8_lossy(direct.get_password().expect("a password")),
        direct.get_dbname().expect("a database"),
    );
    let config = PgConfig::new(&via_proxy)
        .unwrap()
        .with_schema(fresh_schema())
        .with_pool_size(2);
    let mut s = PgStore::connect(&config).unwrap();
    let g = group(1);
    s.create_mailbox("x", 10, &g).unwrap();
    let b = batch(&g, EnvelopeKind::Message, 2, 1);
    p.trap.store(true, Ordering::SeqCst);
    s.append(std::slice::from_ref(&b))
        .expect("the append committed: its lost reply is resolved");
    assert!(!p.trap.load(Ordering::SeqCst), "the reply was dropped");
    assert_eq!(s.mailbox(&g.id).unwrap().unwrap().head, 2);
    assert_eq!(s.envelopes(&g.id, 0, EVERYTHING).unwrap(), b.envelopes);
}
