//! The reference forwarder of `pps`: crates/dataplane/bpf/xdp_redirect.c
//! (built with the engine's program) attached to the director's ingress,
//! rewriting both MACs and redirecting to the sink's link. Run inside the
//! director's namespace; it stays attached until the process is stopped.

use anyhow::{anyhow, bail, Context, Result};
use aya::maps::Array;
use aya::programs::{Xdp, XdpMode};
use aya::Ebpf;
use std::net::Ipv4Addr;

use rlvs_dataplane::xdp::REFERENCE_OBJECT as OBJECT;

#[repr(C)]
#[derive(Clone, Copy)]
struct Target {
    ifindex: u32,
    vip: u32,
    src: [u8; 6],
    dst: [u8; 6],
}

const _: () = assert!(std::mem::size_of::<Target>() == 20);

// SAFETY: a plain C struct without padding (20 bytes of fields).
unsafe impl aya::Pod for Target {}

pub fn available() -> bool {
    !OBJECT.is_empty()
}

pub fn run(ingress: &str, egress: &str, vip: Ipv4Addr, dst_mac: [u8; 6]) -> Result<()> {
    if rlvs_dataplane::iface::in_initial_netns() {
        bail!("the reference forwarder only runs inside a network namespace");
    }
    if !available() {
        bail!("built without clang: no reference XDP program");
    }
    let out = rlvs_dataplane::iface::index_of(egress).ok_or_else(|| anyhow!("no interface {egress}"))?;
    let src = rlvs_dataplane::iface::mac_of(out)?;
    let mut bpf = Ebpf::load(OBJECT)?;
    let prog: &mut Xdp = bpf.program_mut("xdp_redirect_ref").ok_or_else(|| anyhow!("no program"))?.try_into()?;
    prog.load()?;
    prog.attach(ingress, XdpMode::Driver).with_context(|| format!("attaching to {ingress}"))?;
    let mut m: Array<_, Target> = Array::try_from(bpf.map_mut("target").ok_or_else(|| anyhow!("no map"))?)?;
    m.set(0, Target { ifindex: out, vip: u32::from_ne_bytes(vip.octets()), src, dst: dst_mac }, 0)?;
    println!("attached");
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
