//! What the SQLite files hold: no DID outside the quota counter, no DID next to a mailbox
//! id, and no payload after it was deleted or expired.

use std::path::Path;
use std::time::Duration;

use atmls_ds::{MailboxId, OutgoingEnvelope, SqliteStore};
use rusqlite::types::ValueRef;

use crate::harness::{Harness, config, key};

const DIDS: [&str; 4] = [
    "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
    "did:plc:44ybard66vv44zksje25o7dz",
    "did:web:alice.example.com",
    "did:plc:vwzwgnygau7ed7b7wt5ux7y2",
];

fn find_all(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return Vec::new();
    }
    (0..=hay.len() - needle.len())
        .filter(|&i| &hay[i..i + needle.len()] == needle)
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !find_all(hay, needle).is_empty()
}

fn read_or_empty(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

/// Checks one database file and its WAL, page by page: a DID may appear only on the
/// quota table's root page, and a page holding a DID holds no mailbox id.
fn scan_files(db: &Path, page_size: usize, quota_root: u32, ids: &[MailboxId]) {
    let id_needles: Vec<Vec<u8>> = ids
        .iter()
        .flat_map(|id| [id.as_bytes().to_vec(), id.to_string().into_bytes()])
        .collect();
    let check_page = |what: &str, page_no: u32, page: &[u8], did: &str| {
        assert_eq!(
            page_no, quota_root,
            "{what}: {did} on page {page_no}, not the quota table's ({quota_root})"
        );
        for n in &id_needles {
            assert!(
                !contains(page, n),
                "{what}: a mailbox id shares page {page_no} with {did}"
            );
        }
    };
    let main = read_or_empty(db);
    let wal = read_or_empty(&db.with_extension("sqlite-wal"));
    for did in DIDS {
        for off in find_all(&main, did.as_bytes()) {
            let page_no = (off / page_size) as u32 + 1;
            let start = (page_no as usize - 1) * page_size;
            check_page("db", page_no, &main[start..start + page_size], did);
        }
        // WAL: 32-byte header, then frames of a 24-byte header (page number first) + page.
        let frame = 24 + page_size;
        for off in find_all(&wal, did.as_bytes()) {
            assert!(off >= 32, "DID in the WAL header");
            let k = (off - 32) / frame;
            let f = 32 + k * frame;
            let page_no = u32::from_be_bytes(wal[f..f + 4].try_into().unwrap());
            check_page("wal", page_no, &wal[f + 24..f + frame], did);
        }
    }
}

#[test]
fn database_links_no_did_to_a_mailbox() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ds.sqlite");
    let store = SqliteStore::open(&db).unwrap();
    let mut h = Harness::new(store);
    let mut ids = Vec::new();
    for (n, did) in DIDS.iter().enumerate() {
        let k = key(n as u8 + 1);
        let g = h.group(did, &k, 0);
        let i = h.inbox(did, &k);
        for m in 0..5u8 {
            h.send_message(&k, &g, &[b'm', m, n as u8]).unwrap();
            h.welcome(&i, &[b'w', m, n as u8]).unwrap();
        }
        ids.extend([g, i]);
    }
    let (page_size, quota_root) = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let ps: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        let root: i64 = conn
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = 'account_quota'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (ps as usize, root as u32)
    };
    // While open (the WAL holds the recent pages) and after closing.
    let wal = read_or_empty(&db.with_extension("sqlite-wal"));
    assert!(
        DIDS.iter().any(|d| contains(&wal, d.as_bytes())),
        "the scan sees the WAL"
    );
    scan_files(&db, page_size, quota_root, &ids);
    h.ds.into_store().close().unwrap();
    let main = read_or_empty(&db);
    assert!(
        DIDS.iter().all(|d| contains(&main, d.as_bytes())),
        "the scan sees the quota rows"
    );
    scan_files(&db, page_size, quota_root, &ids);

    // Row by row: DIDs only in account_quota; account_quota holds no mailbox id; the
    // mailbox table has no account or time column.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        tables.contains(&"account_quota".to_string()) && tables.contains(&"mailboxes".to_string())
    );
    let columns = |t: &str| -> Vec<String> {
        conn.prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(columns("account_quota"), ["account", "mailboxes"]);
    for c in columns("mailboxes") {
        assert!(
            !["account", "did", "created", "time"]
                .iter()
                .any(|w| c.contains(w)),
            "{c}"
        );
    }
    let mut quota_rows = 0;
    for t in &tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let cells: Vec<Vec<u8>> = (0..n)
                .map(|i| match row.get_ref(i).unwrap() {
                    ValueRef::Text(b) | ValueRef::Blob(b) => b.to_vec(),
                    _ => Vec::new(),
                })
                .collect();
            let has_did = cells
                .iter()
                .any(|c| DIDS.iter().any(|d| contains(c, d.as_bytes())));
            let has_id = cells.iter().any(|c| {
                ids.iter()
                    .any(|id| contains(c, id.as_bytes()) || contains(c, id.to_string().as_bytes()))
            });
            if t == "account_quota" {
                quota_rows += 1;
                assert!(has_did && !has_id, "quota row with a mailbox id");
            } else {
                assert!(!has_did, "a DID in table {t}");
            }
        }
    }
    assert_eq!(quota_rows, DIDS.len());
}

#[test]
fn deleted_and_expired_payloads_leave_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ds.sqlite");
    // Payloads larger than a page, so they live in overflow pages.
    let cfg = config()
        .with_group_retention(Some(Duration::from_secs(3600)))
        .with_max_envelope_bytes(20_000);
    let mut h = Harness::with_config(SqliteStore::open(&db).unwrap(), cfg);
    let k = key(1);
    let g = h.group("did:plc:a", &k, 0);
    let i = h.inbox("did:plc:a", &k);
    let secret_g = b"GROUP-SECRET-0123456789-GROUP-SECRET".repeat(300);
    let secret_i = b"INBOX-SECRET-9876543210-INBOX-SECRET".repeat(300);
    h.send(
        &k,
        &g,
        vec![OutgoingEnvelope::message(secret_g[..9000].to_vec())],
    )
    .unwrap();
    h.welcome(&i, &secret_i[..9000]).unwrap();
    let both = |db: &Path| {
        let mut all = read_or_empty(db);
        all.extend(read_or_empty(&db.with_extension("sqlite-wal")));
        all
    };
    let marker_g = &secret_g[..36];
    let marker_i = &secret_i[..36];
    assert!(contains(&both(&db), marker_g) && contains(&both(&db), marker_i));
    assert_eq!(h.delete(&k, &i, &[1]).unwrap(), 1);
    assert!(
        !contains(&both(&db), marker_i),
        "deleted inbox item still on disk"
    );
    h.advance(Duration::from_secs(3601));
    assert_eq!(h.ds.expire(h.now).unwrap().group_envelopes, 1);
    assert!(
        !contains(&both(&db), marker_g),
        "expired envelope still on disk"
    );
    h.ds.into_store().close().unwrap();
    assert!(!contains(&both(&db), marker_g) && !contains(&both(&db), marker_i));
}
