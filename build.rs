//! Rebuilds fleet when a built-in recipe or stdlib module is added, changed or removed:
//! they are embedded with include_dir, which cargo does not track by itself.

fn main() {
    println!("cargo:rerun-if-changed=recipes");
    println!("cargo:rerun-if-changed=stdlib");
}
