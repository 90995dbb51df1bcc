//! Compiles the BPF programs in bpf/ with clang for the BPF target:
//! rlvs_xdp.c, the engine's, and xdp_redirect.c, the benchmark's reference
//! forwarder. Without clang the build still succeeds: the objects are left
//! empty, the engine reports that AF_XDP is unavailable and runs on
//! AF_PACKET, and the benchmark leaves the reference out.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    // Every header the programs include.
    println!("cargo:rerun-if-changed=bpf");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let arch_include = format!("/usr/include/{}-linux-gnu", std::env::var("CARGO_CFG_TARGET_ARCH").unwrap());
    for name in ["rlvs_xdp", "xdp_redirect"] {
        let src = format!("bpf/{name}.c");
        println!("cargo:rerun-if-changed={src}");
        let out = out_dir.join(format!("{name}.o"));
        let status = Command::new("clang")
            .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror", "-I", &arch_include, "-c", &src, "-o"])
            .arg(&out)
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("clang failed to build {src}: {s}"),
            Err(e) => {
                println!("cargo:warning=clang not found ({e}): building without {src}");
                std::fs::write(&out, b"").unwrap();
            }
        }
    }
}
