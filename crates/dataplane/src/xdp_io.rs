//! The AF_XDP path of one worker: its sockets (one per served interface,
//! all on the worker's queue), the transmit side the forwarding code
//! writes to, and the program that feeds them.

use crate::afpacket::{TxBatch, VNET_HDR_LEN};
use crate::csum;
use crate::iface;
use crate::xdp::Program;
use crate::xmit::Transmit;
use crate::xsk::{BindMode, Xsk};
use anyhow::{Context, Result};
use std::os::fd::RawFd;

pub(crate) struct XdpTx {
    pub socks: Vec<Xsk>,
    /// For interfaces this worker has no socket on.
    fallback: TxBatch,
    /// Set when the frame being handled was sent from where it was received,
    /// so its chunk is not recycled yet.
    pub taken: bool,
    pub copies: u64,
}

impl Transmit for XdpTx {
    unsafe fn queue(&mut self, ifindex: i32, dst: [u8; 6], vnet_and_frame: &mut [u8]) {
        let Some(s) = self.socks.iter_mut().find(|s| s.ifindex as i32 == ifindex) else {
            return self.fallback.queue(ifindex, dst, vnet_and_frame);
        };
        // Frames leave AF_XDP as CHECKSUM_NONE: nobody finishes them later.
        csum::complete(vnet_and_frame);
        let frame = &vnet_and_frame[VNET_HDR_LEN..];
        match s.offset_of(frame.as_ptr()) {
            Some(addr) => {
                if s.send_in_place(addr, frame.len() as u32) {
                    self.taken = true;
                }
            }
            None => {
                s.send_copy(frame);
                self.copies += 1;
            }
        }
    }

    fn flush(&mut self) {
        for s in &mut self.socks {
            s.flush();
        }
        self.fallback.flush();
    }
}

pub(crate) struct XdpIo {
    /// Held for its lifetime: dropping it detaches the program.
    pub prog: Option<Program>,
    pub tx: XdpTx,
}

impl XdpIo {
    /// Attaches the program to `devices` and opens this worker's sockets on
    /// `queue` of each (the ones that have that queue).
    pub fn open(devices: &[String], queue: u32, zero_copy: bool) -> Result<XdpIo> {
        let mut ifaces = Vec::new();
        for d in devices {
            let index = iface::index_of(d).with_context(|| format!("no interface {d}"))?;
            let mac = iface::mac_of(index).with_context(|| format!("reading the MAC of {d}"))?;
            ifaces.push((index, d.clone(), mac));
        }
        let mut prog = Program::attach(&ifaces)?;
        let socks = open_sockets(&mut prog, &ifaces, queue, zero_copy)?;
        let fallback = TxBatch::new().context("opening the AF_PACKET transmit socket")?;
        Ok(XdpIo { prog: Some(prog), tx: XdpTx { socks, fallback, taken: false, copies: 0 } })
    }

    pub fn fds(&self) -> Vec<RawFd> {
        self.tx.socks.iter().map(|s| s.fd()).collect()
    }

    pub fn modes(&self) -> Vec<(u32, BindMode)> {
        self.tx.socks.iter().map(|s| (s.ifindex, s.mode)).collect()
    }
}

/// Opens a socket on `queue` of every interface that has it and registers
/// it with the program.
pub(crate) fn open_sockets(
    prog: &mut Program,
    ifaces: &[(u32, String, [u8; 6])],
    queue: u32,
    zero_copy: bool,
) -> Result<Vec<Xsk>> {
    let mut socks = Vec::new();
    for (index, name, _) in ifaces {
        if queue >= rx_queues(name) {
            continue;
        }
        let s =
            Xsk::open(*index, queue, zero_copy).with_context(|| format!("AF_XDP socket on {name} queue {queue}"))?;
        prog.register(*index, queue, s.fd())?;
        socks.push(s);
    }
    Ok(socks)
}

/// How many receive queues the kernel shows for `name`.
pub fn rx_queues(name: &str) -> u32 {
    std::fs::read_dir(format!("/sys/class/net/{name}/queues"))
        .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("rx-")).count() as u32)
        .unwrap_or(1)
        .max(1)
}
