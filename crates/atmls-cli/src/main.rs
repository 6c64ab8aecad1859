//! `atmls`: the command-line entry point.
#![forbid(unsafe_code)]

fn main() {
    println!("atmls: skeleton");
}
