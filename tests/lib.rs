//! End-to-end tests: the built `fleet` binary run in temporary projects.

mod support;

mod cli;
mod diagnostics;
mod git;
mod runs;
mod ssh;
