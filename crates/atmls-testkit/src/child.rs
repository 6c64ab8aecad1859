//! A server in a child process, for tests that kill it: the test binary runs itself again
//! with one test selected (the child's "main"), which prints `listening on http://ADDR`
//! and serves until its stdin closes. Dropping the [`Child`] kills it (SIGKILL).

use std::io::BufRead as _;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

/// What a child prints once it listens; [`spawn`] waits for it.
pub const LISTENING: &str = "listening on http://";

/// A child process; killed (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct Child(std::process::Child);

impl Child {
    /// Kills the child at once (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs this test binary again with only the test `name`, and `var` set to `value` in its
/// environment (the child test does nothing without it); waits at most `wait` for the
/// child's [`LISTENING`] line. Panics (fails the test) when the child does not start.
pub fn spawn(name: &str, var: &str, value: &str, wait: Duration) -> (Child, SocketAddr) {
    let mut child = Command::new(std::env::current_exe().expect("this test binary"))
        .args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(var, value)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child server");
    let stdout = child.stdout.take().expect("the child's stdout");
    let child = Child(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // The test harness prints its own words first (on the same line, too).
        let line = std::io::BufReader::new(stdout)
            .lines()
            .take(20)
            .map_while(Result::ok)
            .find(|l| l.contains(LISTENING))
            .unwrap_or_default();
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(wait)
        .expect("the child server did not start");
    let addr = line
        .split_once(LISTENING)
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .1
        .trim()
        .parse()
        .expect("address");
    (child, addr)
}
