//! Shared build script for every crate whose binaries or tests link libtorch.
//!
//! Two things the default tch link misses (see docs/architecture.md, "Linking"):
//! - an rpath to the libtorch folder, so binaries run without LD_LIBRARY_PATH;
//! - `--no-as-needed -ltorch`, without which the linker drops `libtorch_cuda.so`
//!   (no symbol of it is referenced directly) and CUDA is silently unavailable.
//!
//! `DEP_TCH_LIBTORCH_LIB` reaches only crates that depend on `torch-sys` directly.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(dir) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
        println!("cargo:rustc-link-search=native={dir}");
    }
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    println!("cargo:rustc-link-arg=-ltorch");
}
