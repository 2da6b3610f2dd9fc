//! The `fleet` binary: run, print the error, exit with its code.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    fleet::sysinfo::raise_open_files_limit();
    let code = match fleet::run(args) {
        Ok(code) => code,
        Err(err) => fleet::commands::report_error(err),
    };
    std::process::exit(code);
}
