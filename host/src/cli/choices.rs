//! The library's enums as command-line choices: the library knows nothing of
//! clap, so each choice a flag offers is declared here, with the help text
//! `--help` shows for it, and mapped onto the library's type.

use bouncer::audit::Format;
use bouncer::authoring::Language;
use bouncer::policy::ResetChoice;

/// `--lang` of `bouncer new`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum LanguageChoice {
    /// Rust with the bouncer SDK, built for `wasm32-wasip2`.
    Rust,
    /// JavaScript, componentized by `@bytecodealliance/componentize-js`.
    Js,
    /// Python, componentized by `componentize-py`.
    Python,
}

impl From<LanguageChoice> for Language {
    fn from(choice: LanguageChoice) -> Self {
        match choice {
            LanguageChoice::Rust => Self::Rust,
            LanguageChoice::Js => Self::Js,
            LanguageChoice::Python => Self::Python,
        }
    }
}

/// `--report-format` of `bouncer audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum FormatChoice {
    /// `openreports.io/v1alpha1` Report and ClusterReport.
    Openreports,
    /// `wgpolicyk8s.io/v1alpha2` PolicyReport and ClusterPolicyReport.
    Wgpolicyk8s,
}

impl From<FormatChoice> for Format {
    fn from(choice: FormatChoice) -> Self {
        match choice {
            FormatChoice::Openreports => Self::Openreports,
            FormatChoice::Wgpolicyk8s => Self::Wgpolicyk8s,
        }
    }
}

/// `--instance-reset` of `bouncer serve`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(super) enum ResetChoiceArg {
    /// The scan where memory provably cannot be swapped, the full reset elsewhere.
    #[default]
    Auto,
    /// Always the full reset.
    Full,
    /// Always the scan, even where memory can swap: unsound there; for
    /// measuring the two paths against each other.
    Scan,
}

impl From<ResetChoiceArg> for ResetChoice {
    fn from(choice: ResetChoiceArg) -> Self {
        match choice {
            ResetChoiceArg::Auto => Self::Auto,
            ResetChoiceArg::Full => Self::Full,
            ResetChoiceArg::Scan => Self::Scan,
        }
    }
}
