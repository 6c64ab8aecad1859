//! atproto-interop-tests `syntax/did_syntax_*` and `handle_syntax_*`, read from the
//! repository copy.

mod common;

use atmls_identity::{Did, Handle};

fn lines(name: &str) -> Vec<String> {
    let path = common::fixtures()
        .join("atproto-interop-tests/syntax")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[test]
fn did_syntax_fixtures() {
    let valid = lines("did_syntax_valid.txt");
    let invalid = lines("did_syntax_invalid.txt");
    for s in &valid {
        Did::new(s.as_str()).unwrap_or_else(|e| panic!("{s:?} should be valid: {e}"));
    }
    for s in &invalid {
        assert!(Did::new(s.as_str()).is_err(), "{s:?} should be invalid");
    }
    assert!(valid.len() >= 20 && invalid.len() >= 15);
    println!(
        "did syntax: {} valid, {} invalid",
        valid.len(),
        invalid.len()
    );
}

#[test]
fn handle_syntax_fixtures() {
    let valid = lines("handle_syntax_valid.txt");
    let invalid = lines("handle_syntax_invalid.txt");
    for s in &valid {
        Handle::new(s).unwrap_or_else(|e| panic!("{s:?} should be valid: {e}"));
    }
    for s in &invalid {
        assert!(Handle::new(s).is_err(), "{s:?} should be invalid");
    }
    println!(
        "handle syntax: {} valid, {} invalid",
        valid.len(),
        invalid.len()
    );
}
