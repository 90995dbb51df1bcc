//! AF_PACKET with a TPACKET_V3 receive ring and batched `sendmmsg`
//! transmission, both with PACKET_VNET_HDR so that checksum-partial and GSO
//! frames (what veth hands out with its default offloads) pass through
//! unchanged: each frame comes with a virtio-net header describing its
//! pending checksum and segmentation, and goes out with the same header.
//!
//! Everything here is plain memory and system calls; the only packet logic
//! is reading the ring's own descriptors, all bounds-checked against the
//! block so a corrupt descriptor cannot make us read outside the mapping.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr;
use std::sync::atomic::{fence, Ordering};

const TPACKET_V2: libc::c_int = 1;
const TPACKET_V3: libc::c_int = 2;
const PACKET_VNET_HDR: libc::c_int = 15;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
const PACKET_QDISC_BYPASS: libc::c_int = 20;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const ETH_P_ALL: u16 = 0x0003;
pub const VNET_HDR_LEN: usize = 10;
const VIRTIO_NET_HDR_F_DATA_VALID: u8 = 2;

/// Offsets in the kernel's ring structures (linux/if_packet.h).
mod layout {
    // struct tpacket_block_desc { u32 version; u32 offset_to_priv; tpacket_hdr_v1 hdr }
    pub const BLOCK_STATUS: usize = 8;
    pub const BLOCK_NUM_PKTS: usize = 12;
    pub const BLOCK_FIRST_PKT: usize = 16;
    // struct tpacket3_hdr
    pub const PKT_NEXT: usize = 0;
    pub const PKT_SNAPLEN: usize = 12;
    pub const PKT_LEN: usize = 16;
    pub const PKT_MAC: usize = 24;
    /// sockaddr_ll follows the 48-byte tpacket3_hdr (TPACKET_ALIGN'ed).
    pub const PKT_SLL: usize = 48;
    pub const SLL_IFINDEX: usize = 4;
    pub const SLL_PKTTYPE: usize = 10;
}

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: v points to a live T of the size passed.
    cvt(unsafe {
        libc::setsockopt(fd, level, name, v as *const T as *const libc::c_void, std::mem::size_of::<T>() as u32)
    })
    .map(|_| ())
}

fn packet_socket(protocol: u16) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2).
    let fd = cvt(unsafe {
        libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, i32::from(protocol.to_be()))
    })?;
    // SAFETY: fd was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Frame types as `sll_pkttype` reports them.
pub const PACKET_HOST: u8 = 0;

/// One received frame, borrowed from the ring.
pub struct RxFrame<'a> {
    /// The virtio-net header followed by the frame, contiguous in the ring.
    pub vnet_and_frame: &'a mut [u8],
    pub ifindex: i32,
    pub pkttype: u8,
    /// Set when the ring truncated the frame (never forward those).
    pub truncated: bool,
}

impl RxFrame<'_> {
    pub fn frame(&mut self) -> &mut [u8] {
        &mut self.vnet_and_frame[VNET_HDR_LEN..]
    }
}

/// Receives the frames of one ring block.
pub trait BlockConsumer {
    fn frame(&mut self, f: RxFrame<'_>);
    /// Called before the block goes back to the kernel: nothing may point
    /// into it afterwards.
    fn block_done(&mut self);
}

/// The receive ring's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingVersion {
    /// TPACKET_V2: one slot per frame, each handed over as soon as it is
    /// written — the lowest latency.
    V2,
    /// TPACKET_V3: variable-size frames packed in blocks, a block handed
    /// over when full or after a 1 ms timeout — the fewest wake-ups under
    /// load, at up to 1 ms of latency when traffic is light.
    V3,
}

pub struct RxRing {
    fd: OwnedFd,
    map: *mut u8,
    version: RingVersion,
    /// V3: block size; V2: slot size.
    block_size: usize,
    block_nr: usize,
    next_block: usize,
}

// SAFETY: the mapping is owned by this value and only touched through &mut self.
unsafe impl Send for RxRing {}

impl RxRing {
    /// A ring on every interface of the current network namespace; `filter`
    /// is a classic BPF program run by the kernel before a frame is copied.
    /// `block_size` must hold the largest frame (a 64 KiB GSO frame with
    /// its headers); for V2 it is the slot size.
    pub fn new(
        version: RingVersion,
        block_size: usize,
        block_nr: usize,
        filter: &[libc::sock_filter],
    ) -> io::Result<RxRing> {
        let fd = packet_socket(ETH_P_ALL)?;
        let raw = fd.as_raw_fd();
        let prog = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr() as *mut _ };
        setsockopt(raw, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &prog)?;
        setsockopt(raw, libc::SOL_PACKET, PACKET_VNET_HDR, &1i32)?;
        setsockopt(raw, libc::SOL_PACKET, PACKET_IGNORE_OUTGOING, &1i32)?;
        match version {
            RingVersion::V3 => {
                setsockopt(raw, libc::SOL_PACKET, libc::PACKET_VERSION, &TPACKET_V3)?;
                let frame_size = 2048usize;
                let req = libc::tpacket_req3 {
                    tp_block_size: block_size as u32,
                    tp_block_nr: block_nr as u32,
                    tp_frame_size: frame_size as u32,
                    tp_frame_nr: (block_size / frame_size * block_nr) as u32,
                    // A partly filled block is handed over after at most 1 ms.
                    tp_retire_blk_tov: 1,
                    tp_sizeof_priv: 0,
                    tp_feature_req_word: 0,
                };
                setsockopt(raw, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)?;
            }
            RingVersion::V2 => {
                setsockopt(raw, libc::SOL_PACKET, libc::PACKET_VERSION, &TPACKET_V2)?;
                let req = libc::tpacket_req {
                    tp_block_size: block_size as u32,
                    tp_block_nr: block_nr as u32,
                    tp_frame_size: block_size as u32,
                    tp_frame_nr: block_nr as u32,
                };
                setsockopt(raw, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)?;
            }
        }
        let len = block_size * block_nr;
        // SAFETY: maps the ring the kernel just allocated for this socket.
        let map = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                raw,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a plain C struct, for which all-zero bytes are a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = 0;
        // SAFETY: a valid sockaddr_ll.
        cvt(unsafe { libc::bind(raw, &sll as *const _ as *const libc::sockaddr, std::mem::size_of_val(&sll) as u32) })?;
        Ok(RxRing { fd, map: map as *mut u8, version, block_size, block_nr, next_block: 0 })
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn block(&mut self, i: usize) -> &mut [u8] {
        // SAFETY: block i lies inside the mapping; &mut self guarantees no alias.
        unsafe { std::slice::from_raw_parts_mut(self.map.add(i * self.block_size), self.block_size) }
    }

    fn read_u32(b: &[u8], at: usize) -> u32 {
        u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
    }

    /// Hands the next filled block (V3) or run of filled slots (V2) to
    /// `consumer` frame by frame, lets it finish with them (transmit what
    /// still points into them), then gives them back to the kernel. Returns
    /// false when nothing is ready.
    pub fn next_block<C: BlockConsumer>(&mut self, consumer: &mut C) -> bool {
        match self.version {
            RingVersion::V3 => self.next_block_v3(consumer),
            RingVersion::V2 => self.next_slots_v2(consumer),
        }
    }

    /// Up to 64 consecutive ready slots of a TPACKET_V2 ring.
    fn next_slots_v2<C: BlockConsumer>(&mut self, consumer: &mut C) -> bool {
        const STATUS: usize = 0;
        const LEN: usize = 4;
        const SNAPLEN: usize = 8;
        const MAC: usize = 12;
        const SLL: usize = 32;
        let start = self.next_block;
        let mut taken = 0;
        while taken < 64 {
            let idx = (start + taken) % self.block_nr;
            let b = self.block(idx);
            // SAFETY: tp_status is a u32 the kernel writes; read it volatile.
            let status = unsafe { ptr::read_volatile(b.as_ptr().add(STATUS) as *const u32) };
            if status & TP_STATUS_USER == 0 {
                break;
            }
            fence(Ordering::Acquire);
            let size = b.len();
            let snaplen = Self::read_u32(b, SNAPLEN) as usize;
            let len = Self::read_u32(b, LEN) as usize;
            let mac = u16::from_ne_bytes(b[MAC..MAC + 2].try_into().unwrap()) as usize;
            let ifindex =
                i32::from_ne_bytes(b[SLL + layout::SLL_IFINDEX..SLL + layout::SLL_IFINDEX + 4].try_into().unwrap());
            let pkttype = b[SLL + layout::SLL_PKTTYPE];
            if mac >= VNET_HDR_LEN && mac + snaplen <= size {
                consumer.frame(RxFrame {
                    vnet_and_frame: &mut b[mac - VNET_HDR_LEN..mac + snaplen],
                    ifindex,
                    pkttype,
                    truncated: snaplen < len,
                });
            }
            taken += 1;
        }
        if taken == 0 {
            return false;
        }
        consumer.block_done();
        fence(Ordering::Release);
        for k in 0..taken {
            let idx = (start + k) % self.block_nr;
            let b = self.block(idx);
            // SAFETY: returning the slot to the kernel.
            unsafe { ptr::write_volatile(b.as_mut_ptr().add(STATUS) as *mut u32, TP_STATUS_KERNEL) };
        }
        self.next_block = (start + taken) % self.block_nr;
        true
    }

    fn next_block_v3<C: BlockConsumer>(&mut self, consumer: &mut C) -> bool {
        let idx = self.next_block;
        let b = self.block(idx);
        // SAFETY: block_status is a u32 the kernel writes; read it volatile.
        let status = unsafe { ptr::read_volatile(b.as_ptr().add(layout::BLOCK_STATUS) as *const u32) };
        if status & TP_STATUS_USER == 0 {
            return false;
        }
        fence(Ordering::Acquire);
        let num = Self::read_u32(b, layout::BLOCK_NUM_PKTS) as usize;
        let mut off = Self::read_u32(b, layout::BLOCK_FIRST_PKT) as usize;
        let size = b.len();
        for _ in 0..num {
            if off + layout::PKT_SLL + 12 > size {
                break;
            }
            let next = Self::read_u32(b, off + layout::PKT_NEXT) as usize;
            let snaplen = Self::read_u32(b, off + layout::PKT_SNAPLEN) as usize;
            let len = Self::read_u32(b, off + layout::PKT_LEN) as usize;
            let mac =
                u16::from_ne_bytes(b[off + layout::PKT_MAC..off + layout::PKT_MAC + 2].try_into().unwrap()) as usize;
            let sll = off + layout::PKT_SLL;
            let ifindex =
                i32::from_ne_bytes(b[sll + layout::SLL_IFINDEX..sll + layout::SLL_IFINDEX + 4].try_into().unwrap());
            let pkttype = b[sll + layout::SLL_PKTTYPE];
            let start = off + mac;
            if mac >= VNET_HDR_LEN && start + snaplen <= size {
                consumer.frame(RxFrame {
                    vnet_and_frame: &mut b[start - VNET_HDR_LEN..start + snaplen],
                    ifindex,
                    pkttype,
                    truncated: snaplen < len,
                });
            }
            if next == 0 {
                break;
            }
            off += next;
        }
        consumer.block_done();
        fence(Ordering::Release);
        // SAFETY: as above; returning the block to the kernel.
        unsafe { ptr::write_volatile(b.as_mut_ptr().add(layout::BLOCK_STATUS) as *mut u32, TP_STATUS_KERNEL) };
        self.next_block = (idx + 1) % self.block_nr;
        true
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping once.
        unsafe { libc::munmap(self.map as *mut libc::c_void, self.block_size * self.block_nr) };
    }
}

/// The classic BPF filter the receive ring uses: IPv4 and IPv6 frames on
/// any interface but loopback (ifindex 1 in every namespace).
pub fn ip_not_loopback_filter() -> Vec<libc::sock_filter> {
    let f = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    const LD_W_ABS: u16 = 0x20;
    const LDH_ABS: u16 = 0x28;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    const SKF_AD_IFINDEX: u32 = 0xffff_f000 + 8;
    vec![
        f(LD_W_ABS, 0, 0, SKF_AD_IFINDEX),
        f(JEQ_K, 4, 0, 1),
        f(LDH_ABS, 0, 0, 12),
        f(JEQ_K, 1, 0, 0x0800),
        f(JEQ_K, 0, 1, 0x86dd),
        f(RET_K, 0, 0, 0xffff_ffff),
        f(RET_K, 0, 0, 0),
    ]
}

const BATCH: usize = 64;

/// Frames queued for one `sendmmsg`. The queued pointers refer to memory
/// (ring blocks) that must stay untouched until `flush` returns.
pub struct TxBatch {
    fd: OwnedFd,
    addrs: Vec<libc::sockaddr_ll>,
    iovs: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
    pub sent: u64,
    pub errors: u64,
}

// SAFETY: the raw pointers are only used between queue and flush on one thread.
unsafe impl Send for TxBatch {}

impl TxBatch {
    pub fn new() -> io::Result<TxBatch> {
        // Protocol 0: this socket only sends, it never receives a copy.
        let fd = packet_socket(0)?;
        setsockopt(fd.as_raw_fd(), libc::SOL_PACKET, PACKET_VNET_HDR, &1i32)?;
        setsockopt(fd.as_raw_fd(), libc::SOL_PACKET, PACKET_QDISC_BYPASS, &1i32)?;
        Ok(TxBatch {
            fd,
            addrs: Vec::with_capacity(BATCH),
            iovs: Vec::with_capacity(BATCH),
            msgs: Vec::with_capacity(BATCH),
            sent: 0,
            errors: 0,
        })
    }

    /// Queues a frame (preceded by its virtio-net header) for `ifindex`,
    /// flushing first when the batch is full.
    ///
    /// # Safety
    /// `vnet_and_frame` must stay valid and unmodified until the next `flush`.
    pub unsafe fn queue(&mut self, ifindex: i32, dst: [u8; 6], vnet_and_frame: &mut [u8]) {
        if self.iovs.len() == BATCH {
            self.flush();
        }
        // DATA_VALID is a receive-side hint; on transmit only NEEDS_CSUM and
        // the GSO fields mean anything.
        vnet_and_frame[0] &= !VIRTIO_NET_HDR_F_DATA_VALID;
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        // The frame's own EtherType, so offloads know what they carry.
        let et = &vnet_and_frame[VNET_HDR_LEN + 12..VNET_HDR_LEN + 14];
        sll.sll_protocol = u16::from_be_bytes([et[0], et[1]]).to_be();
        sll.sll_ifindex = ifindex;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&dst);
        self.addrs.push(sll);
        self.iovs.push(libc::iovec {
            iov_base: vnet_and_frame.as_mut_ptr() as *mut libc::c_void,
            iov_len: vnet_and_frame.len(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.iovs.is_empty()
    }

    /// Sends everything queued.
    pub fn flush(&mut self) {
        if self.iovs.is_empty() {
            return;
        }
        self.msgs.clear();
        for i in 0..self.iovs.len() {
            // SAFETY: a plain C struct, for which all-zero bytes are a valid value.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_name = &mut self.addrs[i] as *mut _ as *mut libc::c_void;
            m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            m.msg_hdr.msg_iov = &mut self.iovs[i];
            m.msg_hdr.msg_iovlen = 1;
            self.msgs.push(m);
        }
        let mut done = 0;
        while done < self.msgs.len() {
            // SAFETY: msgs, addrs and iovs are live and consistent; the frames
            // they point to are guaranteed valid by the `queue` contract.
            let r = unsafe {
                libc::sendmmsg(self.fd.as_raw_fd(), self.msgs[done..].as_mut_ptr(), (self.msgs.len() - done) as u32, 0)
            };
            if r <= 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // The failing frame is dropped; the rest still goes out.
                tracing::debug!(error = %e, "sendmmsg failed");
                self.errors += 1;
                done += 1;
                continue;
            }
            done += r as usize;
            self.sent += r as u64;
        }
        self.addrs.clear();
        self.iovs.clear();
    }
}

/// Waits until one of `fds` is readable or `timeout_ms` passes.
pub fn poll_readable(fds: &[RawFd], timeout_ms: i32) -> io::Result<Vec<bool>> {
    let mut p: Vec<libc::pollfd> =
        fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    // SAFETY: p is a valid pollfd array.
    let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as u64, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(vec![false; fds.len()]);
        }
        return Err(e);
    }
    Ok(p.iter().map(|x| x.revents & (libc::POLLIN | libc::POLLERR) != 0).collect())
}
