//! The `fleet` binary: run, print the error, exit with its code.

fn main() {
    // First, while fleet has one thread: no child inherits a secret, and every configured
    // one is masked from the first line.
    fleet::ops::secrets::take_env();
    fleet::sysinfo::take_run_env();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    fleet::sysinfo::raise_open_files_limit();
    let code = match fleet::run(args) {
        Ok(code) => code,
        Err(err) => fleet::commands::report_error(err),
    };
    std::process::exit(code);
}
