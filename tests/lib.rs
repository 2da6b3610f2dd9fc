//! End-to-end tests: the built `fleet` binary run in temporary projects.

mod support;

mod backup;
mod cli;
mod diagnostics;
mod git;
mod journal;
mod runs;
mod secrets;
mod ssh;
