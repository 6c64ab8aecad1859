//! The demo's transcript: sections, facts, and checks printed as they happen. A failed
//! check stops the demo.

use std::io::Write as _;
use std::time::Instant;

/// A check that did not hold, or a step that failed.
#[derive(Debug)]
pub(crate) struct Failed(pub(crate) String);

impl<E: std::fmt::Display> From<E> for Failed {
    fn from(e: E) -> Self {
        Failed(e.to_string())
    }
}

/// Prints lines as the demo goes and counts checks.
#[derive(Debug)]
pub(crate) struct Transcript {
    started: Instant,
    checks: usize,
    section: usize,
}

impl Transcript {
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
            checks: 0,
            section: 0,
        }
    }

    /// A numbered step heading.
    pub(crate) fn section(&mut self, title: &str) {
        self.section += 1;
        say(&format!(
            "\n{}. {title}  [{:.2} s]",
            self.section,
            self.started.elapsed().as_secs_f64()
        ));
    }

    /// A fact (not a check).
    pub(crate) fn info(&self, line: impl AsRef<str>) {
        say(&format!("   {}", line.as_ref()));
    }

    /// Checks `ok`; prints `✓ what`, or `✗ what: why` and fails.
    pub(crate) fn check(
        &mut self,
        ok: bool,
        what: impl AsRef<str>,
        why: impl FnOnce() -> String,
    ) -> Result<(), Failed> {
        if ok {
            self.checks += 1;
            say(&format!("   ✓ {}", what.as_ref()));
            Ok(())
        } else {
            let why = why();
            say(&format!("   ✗ {}: {why}", what.as_ref()));
            Err(Failed(format!("{}: {why}", what.as_ref())))
        }
    }

    /// Checks `a == b`.
    pub(crate) fn equal<T: PartialEq + std::fmt::Debug>(
        &mut self,
        a: T,
        b: T,
        what: impl AsRef<str>,
    ) -> Result<(), Failed> {
        let ok = a == b;
        self.check(ok, what, || format!("got {a:?}, expected {b:?}"))
    }

    pub(crate) fn checks(&self) -> usize {
        self.checks
    }

    pub(crate) fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// Prints one line now.
pub(crate) fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
