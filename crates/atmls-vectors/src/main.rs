//! `atmls-vectors`: writes `tests/vectors/*.json`; with `--check`, recomputes them in memory
//! and exits non-zero naming the first file that differs.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = match args.as_slice() {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => {
            eprintln!("usage: atmls-vectors [--check]");
            return ExitCode::from(2);
        }
    };
    let dir = atmls_vectors::default_dir();
    let result = if check {
        atmls_vectors::check(&dir)
    } else {
        atmls_vectors::write(&dir)
    };
    match result {
        Ok(()) => {
            if check {
                println!("test vectors: up to date");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("atmls-vectors: {e}");
            ExitCode::FAILURE
        }
    }
}
