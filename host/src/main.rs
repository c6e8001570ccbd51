//! The `bouncer` command: arguments and wiring over the `bouncer` library,
//! and the one place that prints.

// The command line is where bouncer talks to people; the library never prints.
#![allow(clippy::print_stderr)]

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    cli::main()
}
