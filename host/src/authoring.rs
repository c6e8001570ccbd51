//! Writing custom policies: scaffolding a project (`bouncer new`), building it into
//! a component (`bouncer build`), in Rust, JavaScript or Python.
//!
//! The host only drives each language's own toolchain (cargo, componentize-js,
//! componentize-py); it never compiles guest code itself. What it adds is the
//! check that the result implements the `bouncer:policy` world, done by the same
//! engine that will run it.

pub mod build;
pub mod project;
pub mod scaffold;
mod sdk;

pub use project::Language;
