//! The `bouncer` command.

use std::process::ExitCode;

fn main() -> ExitCode {
    bouncer::cli::main()
}
