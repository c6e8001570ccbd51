//! `bouncer policies`: the built-in house rules, one line each.

use std::process::ExitCode;

use crate::policy::BUILTINS;

/// Prints every built-in policy with its description.
pub(super) fn run() -> ExitCode {
    let width = BUILTINS.iter().map(|b| b.name.len()).max().unwrap_or(0);
    for builtin in BUILTINS {
        let mutating = if builtin.mutating {
            " (can mutate)"
        } else {
            ""
        };
        println!("{:width$}  {}{mutating}", builtin.name, builtin.description);
    }
    ExitCode::SUCCESS
}
