//! Every line of the atproto interop syntax fixtures (`tests/fixtures/atproto-interop-tests/
//! syntax/`), checked against the string-format types in `atmls_lexicon::syntax`.
//!
//! Each file is read line by line; empty lines and lines starting with `#` are comments.
//! Other lines are used exactly as written (leading and trailing spaces are part of the
//! case). Every failing line is collected so that one run reports all of them.

use std::path::PathBuf;
use std::str::FromStr;

use atmls_lexicon::syntax::{
    AtIdentifier, AtUri, CidString, Datetime, DatetimeError, Did, Handle, Language, Nsid,
    RecordKey, Tid, Uri,
};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/atproto-interop-tests/syntax")
}

/// The test cases of one fixture file, with their line numbers.
fn cases(file: &str) -> Vec<(usize, String)> {
    let path = fixture_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cases: Vec<(usize, String)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(i, l)| (i + 1, l.to_owned()))
        .collect();
    assert!(!cases.is_empty(), "{file} has no cases");
    cases
}

/// Runs `<stem>_valid.txt` (all must parse) and `<stem>_invalid.txt` (none may parse) and
/// returns one line per failing case.
fn check<T: FromStr>(stem: &str) -> Vec<String>
where
    T::Err: std::fmt::Display,
{
    let mut failures = Vec::new();
    for (line, case) in cases(&format!("{stem}_valid.txt")) {
        if let Err(e) = case.parse::<T>() {
            failures.push(format!("{stem}_valid.txt:{line}: {case:?} rejected: {e}"));
        }
    }
    for (line, case) in cases(&format!("{stem}_invalid.txt")) {
        if case.parse::<T>().is_ok() {
            failures.push(format!("{stem}_invalid.txt:{line}: {case:?} accepted"));
        }
    }
    failures
}

fn assert_none(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn did() {
    assert_none(check::<Did>("did_syntax"));
}

#[test]
fn handle() {
    assert_none(check::<Handle>("handle_syntax"));
}

#[test]
fn at_identifier() {
    assert_none(check::<AtIdentifier>("atidentifier_syntax"));
}

#[test]
fn nsid() {
    assert_none(check::<Nsid>("nsid_syntax"));
}

#[test]
fn tid() {
    assert_none(check::<Tid>("tid_syntax"));
}

#[test]
fn record_key() {
    assert_none(check::<RecordKey>("recordkey_syntax"));
}

#[test]
fn at_uri() {
    assert_none(check::<AtUri>("aturi_syntax"));
}

#[test]
fn datetime() {
    assert_none(check::<Datetime>("datetime_syntax"));
}

#[test]
fn cid() {
    assert_none(check::<CidString>("cid_syntax"));
}

#[test]
fn language() {
    assert_none(check::<Language>("language_syntax"));
}

#[test]
fn uri() {
    assert_none(check::<Uri>("uri_syntax"));
}

/// Syntactically fine, semantically impossible datetimes: `Datetime` refuses them, and
/// says so with `OutOfRange` rather than `Syntax`.
#[test]
fn datetime_parse_invalid_is_out_of_range() {
    let mut failures = Vec::new();
    for (line, case) in cases("datetime_parse_invalid.txt") {
        match case.parse::<Datetime>() {
            Err(DatetimeError::OutOfRange(_)) => {}
            other => failures.push(format!(
                "datetime_parse_invalid.txt:{line}: {case:?}: {other:?}"
            )),
        }
    }
    assert_none(failures);
}

/// Well-formed but not valid language tags: accepted as Lexicon strings, reported by
/// `Language::check_valid`.
#[test]
fn language_parse_invalid_is_well_formed_but_not_valid() {
    let mut failures = Vec::new();
    for (line, case) in cases("language_parse_invalid.txt") {
        match case.parse::<Language>() {
            Ok(tag) if tag.check_valid().is_err() => {}
            Ok(_) => failures.push(format!(
                "language_parse_invalid.txt:{line}: {case:?} passed check_valid"
            )),
            Err(e) => failures.push(format!(
                "language_parse_invalid.txt:{line}: {case:?} rejected: {e}"
            )),
        }
    }
    for (line, case) in cases("language_syntax_valid.txt") {
        if let Ok(Err(e)) = case.parse::<Language>().map(|t| t.check_valid()) {
            failures.push(format!(
                "language_syntax_valid.txt:{line}: {case:?} not valid: {e}"
            ));
        }
    }
    assert_none(failures);
}
