//! Compiles the reference XDP forwarder (bpf/xdp_redirect.c) with clang.
//! Without clang the object is left empty and `pps` leaves the reference
//! out, saying why.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "bpf/xdp_redirect.c";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("xdp_redirect.o");
    let arch_include = format!("/usr/include/{}-linux-gnu", std::env::var("CARGO_CFG_TARGET_ARCH").unwrap());
    let status = Command::new("clang")
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror", "-I", &arch_include, "-c", src, "-o"])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("clang failed to build {src}: {s}"),
        Err(e) => {
            println!("cargo:warning=clang not found ({e}): no XDP reference forwarder in pps");
            std::fs::write(&out, b"").unwrap();
        }
    }
}
