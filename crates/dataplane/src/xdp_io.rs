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

pub(crate) struct XdpTx {
    pub socks: Vec<Xsk>,
    /// For interfaces this worker has no socket on.
    fallback: TxBatch,
    /// Set when the frame being handled was sent from where it was received,
    /// so its chunk is not recycled yet.
    pub taken: bool,
    /// Frames the transmit ring (or the chunk pool) had no room for since
    /// the worker last took the count.
    pub tx_full: u64,
}

impl Transmit for XdpTx {
    // SAFETY: the caller keeps Transmit::queue's contract: the frame is
    // sent from the UMEM chunk it lies in (valid until the ring takes it),
    // copied into another socket's chunk, or handed to the fallback.
    unsafe fn queue(&mut self, ifindex: i32, dst: [u8; 6], vnet_and_frame: &mut [u8]) {
        if !self.socks.iter().any(|s| s.ifindex as i32 == ifindex) {
            return self.fallback.queue(ifindex, dst, vnet_and_frame);
        }
        // Frames leave AF_XDP as CHECKSUM_NONE: nobody finishes them later.
        csum::complete(vnet_and_frame);
        let frame = &vnet_and_frame[VNET_HDR_LEN..];
        // Back out of the socket it came in on, from where it lies; else a
        // copy through the first socket of the egress interface.
        let mut first = None;
        for (i, s) in self.socks.iter_mut().enumerate().filter(|(_, s)| s.ifindex as i32 == ifindex) {
            if let Some(addr) = s.offset_of(frame.as_ptr()) {
                if s.send_in_place(addr, frame.len() as u32) {
                    self.taken = true;
                } else {
                    self.tx_full += 1;
                }
                return;
            }
            first.get_or_insert(i);
        }
        if let Some(i) = first {
            if !self.socks[i].send_copy(frame) {
                self.tx_full += 1;
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

/// Attaches the program to `devices`, opens a socket on every receive queue
/// of each (a queue without one would hand its frames to the kernel), and
/// deals the queue numbers out to at most `max_workers` sides.
pub(crate) fn open(
    devices: &[String],
    zero_copy: bool,
    max_workers: usize,
    filter_entries: u32,
    pins: crate::pins::PinDir,
) -> Result<(Program, Vec<XdpTx>)> {
    let mut ifaces = Vec::new();
    for d in devices {
        let index = iface::index_of(d).with_context(|| format!("no interface {d}"))?;
        let mac = iface::mac_of(index).with_context(|| format!("reading the MAC of {d}"))?;
        ifaces.push((index, d.clone(), mac));
    }
    let mut prog = Program::attach(&ifaces, filter_entries, pins)?;
    let queues = ifaces.iter().map(|(_, n, _)| rx_queues(n)).max().unwrap_or(1);
    let workers = queues.min(max_workers.max(1) as u32) as usize;
    let mut sides = Vec::new();
    for _ in 0..workers {
        let fallback = TxBatch::new().context("opening the AF_PACKET transmit socket")?;
        sides.push(XdpTx { socks: Vec::new(), fallback, taken: false, tx_full: 0 });
    }
    for q in 0..queues {
        let socks = open_sockets(&mut prog, &ifaces, q, zero_copy)?;
        sides[q as usize % workers].socks.extend(socks);
    }
    Ok((prog, sides))
}

/// How each socket of a side ended up bound.
pub(crate) fn modes(sides: &[XdpTx]) -> Vec<(u32, u32, BindMode)> {
    sides.iter().flat_map(|x| x.socks.iter().map(|s| (s.ifindex, s.queue, s.mode))).collect()
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
