//! One AF_XDP socket with a UMEM of its own: the four rings the kernel
//! shares with us (fill, completion, receive, transmit), mapped once, and
//! frames that never move. Half the UMEM's chunks are lent to the kernel
//! for receiving; the other half is a pool for frames we build (copies
//! across interfaces, tunnel headers, ICMP). A received frame sent back out
//! of the same socket goes as it is, from where it landed.
//!
//! Nothing here allocates or makes a system call per packet: descriptors
//! move in batches, and the only calls are the transmit kick (copy mode
//! needs one per batch) and poll when there is nothing to do.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

const AF_XDP: i32 = 44;
const SOL_XDP: i32 = 283;
const XDP_MMAP_OFFSETS: i32 = 1;
const XDP_RX_RING: i32 = 2;
const XDP_TX_RING: i32 = 3;
const XDP_UMEM_REG: i32 = 4;
const XDP_UMEM_FILL_RING: i32 = 5;
const XDP_UMEM_COMPLETION_RING: i32 = 6;
/// Linux 6.17+: how many frames one copy-mode send call may take (32 before).
const XDP_MAX_TX_SKB_BUDGET: i32 = 9;
const XDP_COPY: u16 = 1 << 1;
const XDP_ZEROCOPY: u16 = 1 << 2;
const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;
const XDP_RING_NEED_WAKEUP: u32 = 1;
const XDP_PGOFF_RX_RING: i64 = 0;
const XDP_PGOFF_TX_RING: i64 = 0x8000_0000;
const XDP_UMEM_PGOFF_FILL_RING: i64 = 0x1_0000_0000;
const XDP_UMEM_PGOFF_COMPLETION_RING: i64 = 0x1_8000_0000;

/// Chunk size: one page, room for any frame veth hands to XDP plus the
/// kernel's 256 bytes of headroom, where we write a virtio-net header.
pub const CHUNK: u64 = 4096;
pub const RING: u32 = 2048;
const CHUNKS: u64 = 2 * RING as u64;

#[repr(C)]
#[derive(Default)]
struct UmemReg {
    addr: u64,
    len: u64,
    chunk_size: u32,
    headroom: u32,
    flags: u32,
    tx_metadata_len: u32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct RingOffset {
    producer: u64,
    consumer: u64,
    desc: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct MmapOffsets {
    rx: RingOffset,
    tx: RingOffset,
    fr: RingOffset,
    cr: RingOffset,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct Desc {
    pub addr: u64,
    pub len: u32,
    pub options: u32,
}

#[repr(C)]
struct SockaddrXdp {
    family: u16,
    flags: u16,
    ifindex: u32,
    queue_id: u32,
    shared_umem_fd: u32,
}

/// A single-producer/single-consumer ring shared with the kernel.
struct Ring<T: Copy> {
    map: *mut libc::c_void,
    map_len: usize,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    descs: *mut T,
    mask: u32,
    /// Our copies of the indexes: ours is exact, the kernel's is refreshed
    /// only when the cached one says the ring is full or empty.
    cached_prod: u32,
    cached_cons: u32,
}

impl<T: Copy> Ring<T> {
    fn map(fd: RawFd, off: &RingOffset, entries: u32, pgoff: i64) -> io::Result<Ring<T>> {
        let map_len = off.desc as usize + entries as usize * std::mem::size_of::<T>();
        // SAFETY: mapping a region the kernel set up for this socket.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let at = |o: u64| (map as usize + o as usize) as *const AtomicU32;
        let mut r = Ring {
            map,
            map_len,
            producer: at(off.producer),
            consumer: at(off.consumer),
            flags: at(off.flags),
            descs: (map as usize + off.desc as usize) as *mut T,
            mask: entries - 1,
            cached_prod: 0,
            cached_cons: 0,
        };
        // SAFETY: the index words are inside the mapping.
        unsafe {
            r.cached_prod = (*r.producer).load(Ordering::Acquire);
            r.cached_cons = (*r.consumer).load(Ordering::Acquire);
        }
        Ok(r)
    }

    fn needs_wakeup(&self) -> bool {
        // SAFETY: inside the mapping.
        unsafe { (*self.flags).load(Ordering::Relaxed) & XDP_RING_NEED_WAKEUP != 0 }
    }

    /// Producer side: how many entries we may write now; the kernel's
    /// index is reread only when the cached one shows fewer than `want`.
    fn free(&mut self, want: u32) -> u32 {
        let size = self.mask + 1;
        let mut free = size.saturating_sub(self.cached_prod.wrapping_sub(self.cached_cons));
        if free < want {
            // SAFETY: inside the mapping.
            self.cached_cons = unsafe { (*self.consumer).load(Ordering::Acquire) };
            free = size.saturating_sub(self.cached_prod.wrapping_sub(self.cached_cons));
        }
        free
    }

    fn write(&mut self, v: T) {
        // SAFETY: the caller checked free(); the slot is ours until submit.
        unsafe { *self.descs.add((self.cached_prod & self.mask) as usize) = v };
        self.cached_prod = self.cached_prod.wrapping_add(1);
    }

    fn submit(&mut self) {
        // SAFETY: inside the mapping.
        unsafe { (*self.producer).store(self.cached_prod, Ordering::Release) };
    }

    /// Consumer side: how many entries are ready.
    fn ready(&mut self) -> u32 {
        let mut n = self.cached_prod.wrapping_sub(self.cached_cons);
        if n == 0 {
            // SAFETY: inside the mapping.
            self.cached_prod = unsafe { (*self.producer).load(Ordering::Acquire) };
            n = self.cached_prod.wrapping_sub(self.cached_cons);
        }
        n
    }

    fn read(&mut self) -> T {
        // SAFETY: the caller checked ready().
        let v = unsafe { *self.descs.add((self.cached_cons & self.mask) as usize) };
        self.cached_cons = self.cached_cons.wrapping_add(1);
        v
    }

    fn release(&mut self) {
        // SAFETY: inside the mapping.
        unsafe { (*self.consumer).store(self.cached_cons, Ordering::Release) };
    }
}

impl<T: Copy> Drop for Ring<T> {
    fn drop(&mut self) {
        // SAFETY: unmapping what map() mapped.
        unsafe { libc::munmap(self.map, self.map_len) };
    }
}

/// How a socket ended up bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    Copy,
    ZeroCopy,
}

pub struct Xsk {
    fd: OwnedFd,
    umem: *mut u8,
    umem_len: usize,
    fill: Ring<u64>,
    comp: Ring<u64>,
    rx: Ring<Desc>,
    tx: Ring<Desc>,
    /// Chunks of the transmit half not in flight.
    pool: Vec<u64>,
    /// Receive chunks on their way out (sent as received), returned to the
    /// fill ring when the kernel completes them.
    tx_pending: u32,
    pub ifindex: u32,
    pub queue: u32,
    pub mode: BindMode,
}

// SAFETY: the raw pointers are this socket's own mappings, used by the one
// thread that owns the socket.
unsafe impl Send for Xsk {}

fn sockopt<T>(fd: RawFd, name: i32, v: &T) -> io::Result<()> {
    // SAFETY: v is a valid T of the size passed.
    let r = unsafe {
        libc::setsockopt(fd, SOL_XDP, name, v as *const T as *const libc::c_void, std::mem::size_of::<T>() as u32)
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Xsk {
    /// Opens a socket on `ifindex` queue `queue`: zero-copy when asked and
    /// the driver can, else copy mode.
    pub fn open(ifindex: u32, queue: u32, try_zero_copy: bool) -> io::Result<Xsk> {
        if try_zero_copy {
            match Self::open_mode(ifindex, queue, BindMode::ZeroCopy) {
                Ok(x) => return Ok(x),
                Err(e) => tracing::debug!(ifindex, queue, error = %e, "no zero-copy AF_XDP; copy mode"),
            }
        }
        Self::open_mode(ifindex, queue, BindMode::Copy)
    }

    fn open_mode(ifindex: u32, queue: u32, mode: BindMode) -> io::Result<Xsk> {
        // SAFETY: plain socket(2).
        let raw = unsafe { libc::socket(AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let umem_len = (CHUNKS * CHUNK) as usize;
        // SAFETY: anonymous private mapping.
        let umem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                umem_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if umem == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let unmap = |e: io::Error| {
            // SAFETY: unmapping the mapping above on the error path.
            unsafe { libc::munmap(umem, umem_len) };
            e
        };
        let reg = UmemReg { addr: umem as u64, len: umem_len as u64, chunk_size: CHUNK as u32, ..Default::default() };
        let rfd = fd.as_raw_fd();
        sockopt(rfd, XDP_UMEM_REG, &reg).map_err(unmap)?;
        for (opt, n) in
            [(XDP_UMEM_FILL_RING, RING), (XDP_UMEM_COMPLETION_RING, RING), (XDP_RX_RING, RING), (XDP_TX_RING, RING)]
        {
            sockopt(rfd, opt, &n).map_err(unmap)?;
        }
        // Fewer kicks per batch where the kernel allows it; older kernels
        // keep their 32 and we loop.
        let _ = sockopt(rfd, XDP_MAX_TX_SKB_BUDGET, &RING);
        let mut off = MmapOffsets::default();
        let mut len = std::mem::size_of::<MmapOffsets>() as u32;
        // SAFETY: off is a valid buffer of len bytes.
        let r = unsafe {
            libc::getsockopt(rfd, SOL_XDP, XDP_MMAP_OFFSETS, &mut off as *mut _ as *mut libc::c_void, &mut len)
        };
        if r < 0 {
            return Err(unmap(io::Error::last_os_error()));
        }
        let fill = Ring::<u64>::map(rfd, &off.fr, RING, XDP_UMEM_PGOFF_FILL_RING).map_err(unmap)?;
        let comp = Ring::<u64>::map(rfd, &off.cr, RING, XDP_UMEM_PGOFF_COMPLETION_RING).map_err(unmap)?;
        let rx = Ring::<Desc>::map(rfd, &off.rx, RING, XDP_PGOFF_RX_RING).map_err(unmap)?;
        let tx = Ring::<Desc>::map(rfd, &off.tx, RING, XDP_PGOFF_TX_RING).map_err(unmap)?;
        let mut x = Xsk {
            fd,
            umem: umem as *mut u8,
            umem_len,
            fill,
            comp,
            rx,
            tx,
            pool: (RING as u64..CHUNKS).map(|i| i * CHUNK).collect(),
            tx_pending: 0,
            ifindex,
            queue,
            mode,
        };
        // The receive half goes to the kernel before bind.
        for i in 0..RING as u64 {
            x.fill.write(i * CHUNK);
        }
        x.fill.submit();
        let flags = XDP_USE_NEED_WAKEUP | if mode == BindMode::ZeroCopy { XDP_ZEROCOPY } else { XDP_COPY };
        let sa = SockaddrXdp { family: AF_XDP as u16, flags, ifindex, queue_id: queue, shared_umem_fd: 0 };
        // SAFETY: sa is a valid sockaddr_xdp.
        let r = unsafe {
            libc::bind(rfd, &sa as *const _ as *const libc::sockaddr, std::mem::size_of::<SockaddrXdp>() as u32)
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(x)
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Whether `p` points into this socket's UMEM; its offset if so.
    pub fn offset_of(&self, p: *const u8) -> Option<u64> {
        let base = self.umem as usize;
        let a = p as usize;
        (a >= base && a < base + self.umem_len).then(|| (a - base) as u64)
    }

    /// The bytes at `addr..addr+len` of the UMEM, with `before` bytes of the
    /// chunk's headroom in front.
    ///
    /// # Safety
    /// The chunk must be ours (received and not yet returned, or taken from
    /// the pool), and no other live slice may cover it.
    pub unsafe fn slice<'a>(&self, addr: u64, len: usize, before: usize) -> &'a mut [u8] {
        debug_assert!(addr % CHUNK >= before as u64 && (addr % CHUNK) as usize + len <= CHUNK as usize);
        std::slice::from_raw_parts_mut(self.umem.add(addr as usize - before), len + before)
    }

    /// Takes up to `out.len()` received descriptors.
    pub fn receive(&mut self, out: &mut [Desc]) -> usize {
        let n = (self.rx.ready() as usize).min(out.len());
        for d in out.iter_mut().take(n) {
            *d = self.rx.read();
        }
        if n > 0 {
            self.rx.release();
        }
        n
    }

    /// Gives received chunks back to the kernel.
    pub fn recycle(&mut self, addrs: &[u64]) {
        if addrs.is_empty() {
            return;
        }
        // The fill ring has room for every receive chunk, so this never
        // comes up short.
        let free = self.fill.free(addrs.len() as u32) as usize;
        for &a in addrs.iter().take(free) {
            self.fill.write(a - a % CHUNK);
        }
        self.fill.submit();
    }

    /// Queues a frame already in this UMEM (a received one, rewritten).
    pub fn send_in_place(&mut self, addr: u64, len: u32) -> bool {
        if self.tx.free(1) == 0 {
            self.reclaim();
            if self.tx.free(1) == 0 {
                return false;
            }
        }
        self.tx.write(Desc { addr, len, options: 0 });
        self.tx_pending += 1;
        true
    }

    /// Copies `frame` into a pool chunk and queues it.
    pub fn send_copy(&mut self, frame: &[u8]) -> bool {
        if frame.len() > CHUNK as usize {
            return false;
        }
        if self.pool.is_empty() || self.tx.free(1) == 0 {
            self.reclaim();
        }
        if self.tx.free(1) == 0 {
            return false;
        }
        let Some(chunk) = self.pool.pop() else {
            return false;
        };
        // SAFETY: the chunk came from the pool: nobody else uses it.
        let dst = unsafe { self.slice(chunk, frame.len(), 0) };
        dst.copy_from_slice(frame);
        self.tx.write(Desc { addr: chunk, len: frame.len() as u32, options: 0 });
        self.tx_pending += 1;
        true
    }

    /// Publishes queued frames and makes the kernel send them.
    pub fn flush(&mut self) {
        if self.tx_pending == 0 {
            return;
        }
        self.tx.submit();
        self.tx_pending = 0;
        // Copy mode sends only from this call, at most 32 frames per call
        // (or XDP_MAX_TX_SKB_BUDGET).
        let mut spins = 0;
        while self.mode == BindMode::Copy || self.tx.needs_wakeup() {
            // SAFETY: a zero-length sendto is AF_XDP's transmit kick.
            let r = unsafe { libc::sendto(self.fd(), std::ptr::null(), 0, libc::MSG_DONTWAIT, std::ptr::null(), 0) };
            let err = (r < 0).then(io::Error::last_os_error);
            let busy = matches!(err.as_ref().and_then(|e| e.raw_os_error()), Some(libc::EAGAIN) | Some(libc::EBUSY));
            // Done when the kernel has taken everything we published.
            // SAFETY: inside the mapping.
            let taken = unsafe { (*self.tx.consumer).load(Ordering::Acquire) } == self.tx.cached_prod;
            if taken || !busy || spins >= 64 {
                break;
            }
            spins += 1;
        }
        self.reclaim();
    }

    /// Takes completed transmissions back: pool chunks to the pool, receive
    /// chunks to the fill ring.
    pub fn reclaim(&mut self) {
        let n = self.comp.ready();
        if n == 0 {
            return;
        }
        let mut refill = 0;
        // Room for all: every receive chunk fits in the fill ring.
        let room = self.fill.free(n);
        for _ in 0..n {
            let a = self.comp.read();
            let chunk = a - a % CHUNK;
            if chunk >= RING as u64 * CHUNK {
                self.pool.push(chunk);
            } else if refill < room {
                self.fill.write(chunk);
                refill += 1;
            }
        }
        self.comp.release();
        if refill > 0 {
            self.fill.submit();
        }
    }

    /// Whether the kernel waits for a poll before it fills again.
    pub fn fill_needs_wakeup(&self) -> bool {
        self.fill.needs_wakeup()
    }
}

impl Drop for Xsk {
    fn drop(&mut self) {
        // SAFETY: unmapping our UMEM; the rings unmap themselves.
        unsafe { libc::munmap(self.umem as *mut libc::c_void, self.umem_len) };
    }
}
