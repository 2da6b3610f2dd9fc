//! End-to-end tests: the built `fleet` binary run in temporary projects.

mod support;

mod backup;
mod catalog;
mod cli;
mod cloudinit;
mod configure;
mod containers;
mod diagnostics;
mod git;
mod hostile;
mod journal;
mod manners;
mod outputs;
mod provision;
mod pull;
mod readme;
mod recipe_tests;
mod replay;
mod runs;
mod secrets;
mod secrets_file;
mod ssh;
mod status;
mod sudo;
mod terminal;
mod update;
