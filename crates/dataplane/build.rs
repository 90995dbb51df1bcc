//! Compiles the XDP program (bpf/rlvs_xdp.c) with clang for the BPF target.
//! Without clang the build still succeeds: the object is left empty, and
//! the engine reports that AF_XDP is unavailable and runs on AF_PACKET.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "bpf/rlvs_xdp.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-changed=bpf/rlvs_maps.h");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("rlvs_xdp.o");
    let arch_include = format!("/usr/include/{}-linux-gnu", std::env::var("CARGO_CFG_TARGET_ARCH").unwrap());
    let status = Command::new("clang")
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror", "-I", &arch_include, "-c", src, "-o"])
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("clang failed to build {src}: {s}"),
        Err(e) => {
            println!("cargo:warning=clang not found ({e}): building without the XDP program (AF_PACKET only)");
            std::fs::write(&out, b"").unwrap();
        }
    }
}
