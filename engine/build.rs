//! Puts libtorch's library directory on the run-time path of every binary and test
//! of this crate. torch-sys links libtorch but leaves the loader to find it; an rpath
//! here reaches only this package's targets (see shared notes), which is exactly
//! what links the predictor. `LIBTORCH` is exported by `./x`.
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(dir) = std::env::var("LIBTORCH") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}/lib");
    }
}
