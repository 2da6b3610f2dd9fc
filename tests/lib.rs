//! End-to-end tests: the built `fleet` binary run in temporary projects.

mod support;

mod backup;
mod catalog;
mod check;
mod cli;
mod cloudinit;
mod configure;
mod containers;
mod controller;
mod diagnostics;
mod git;
mod hostile;
mod inventories;
mod isolation;
mod journal;
mod keys;
mod manners;
mod nat;
mod outputs;
mod provision;
mod proxy;
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
mod user_add;
mod users_samba;
