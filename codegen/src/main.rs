//! `codegen`: writes `crates/atmls-lexicon/src/gen/` from `lexicons/`.
//!
//! ```text
//! cargo run -p codegen                 # regenerate
//! cargo run -p codegen -- --check      # fail, naming files, if the checked-in code drifted
//! cargo run -p codegen -- --lexicons DIR --out DIR
//! ```
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut lexicons = root.join("lexicons");
    let mut out = root.join("crates/atmls-lexicon/src/gen");
    let mut check = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check" => check = true,
            "--lexicons" | "--out" => {
                let Some(value) = args.next() else {
                    eprintln!("codegen: {arg} needs a directory");
                    return ExitCode::from(2);
                };
                if arg == "--lexicons" {
                    lexicons = value.into()
                } else {
                    out = value.into()
                }
            }
            "-h" | "--help" => {
                println!("usage: codegen [--check] [--lexicons DIR] [--out DIR]");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("codegen: unknown argument {other:?} (try --help)");
                return ExitCode::from(2);
            }
        }
    }
    let result = if check {
        let scratch = match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(e) => {
                eprintln!("codegen: cannot create a temporary directory: {e}");
                return ExitCode::FAILURE;
            }
        };
        codegen::check(&lexicons, &out, scratch.path())
            .map(|n| format!("codegen: {n} generated files are up to date"))
    } else {
        codegen::write(&lexicons, &out)
            .map(|n| format!("codegen: wrote {n} files to {}", out.display()))
    };
    match result {
        Ok(msg) => {
            println!("{msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("codegen: {e}");
            ExitCode::FAILURE
        }
    }
}
