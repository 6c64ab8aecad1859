//! `atmls demo` end to end: exit code 0 and a transcript that shows each step checked.

use std::process::Command;

#[test]
fn demo_checks_every_step() {
    let out = Command::new(env!("CARGO_BIN_EXE_atmls"))
        .arg("demo")
        .env_remove("ATMLS_DEMO_SERVER")
        .env_remove("ATMLS_DS_DATABASE")
        .output()
        .expect("run atmls demo");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains('✗'), "{text}");
    for line in [
        "bob's two devices are one account",
        "bob.test: one verified KeyPackage per device",
        "signed by did:key:",
        "bob laptop joined from its welcome",
        "bob phone joined from its welcome",
        "bob phone decrypted [\"hello bob\"]",
        "alice decrypted [\"hi alice, from my phone\"]",
        "carol cannot read the messages from before she joined",
        "equal at alice, bob laptop, bob phone, carol",
        "carol can no longer send (NotMember)",
        "device database files are encrypted",
        "carol cannot read what is sent after her removal",
        "read from its own database",
        "DS: group mailbox",
        "group mailbox: one envelope per message sent",
        "message texts",
        "bob laptop re-added bob phone",
        "bob phone (restored) decrypted the new message",
        "bob phone sees the lifetime in the group data",
        "bob phone deleted every record of the expired message",
        "alice deleted every record of the expired message",
        "message envelope(s) deleted,",
        "bob's repo holds chat.mls.device/",
        "alice checked the new key's binding",
        "same identity (",
        "alice decrypted [\"signed with my new key\"]",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("all ") && last.contains(" checks passed in "),
        "{last}"
    );
    // Every ✓ line counted: the summary's number is the number of checks printed.
    let ticks = text
        .lines()
        .filter(|l| l.trim_start().starts_with('✓'))
        .count();
    assert_eq!(
        last,
        format!(
            "all {ticks} checks passed in {}",
            last.rsplit(" in ").next().unwrap()
        )
    );
}
