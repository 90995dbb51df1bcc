//! Where the XDP program's maps and links are pinned, so that forwarding
//! outlives the daemon: the host's bpffs, in `rlvs/<netns cookie>/`, one
//! directory per network namespace. The cookie (SO_NETNS_COOKIE) is never
//! reused while the machine runs, unlike a namespace's inode, so a daemon
//! never adopts pins left by a namespace that is gone.
//!
//! Finding the host's bpffs: `ip netns exec` runs the daemon in a private
//! mount namespace with a fresh /sys, where a bpffs mounted at
//! /sys/fs/bpf would die with the daemon. So when the daemon's mount
//! namespace is not its parent's, a short-lived child enters the parent's
//! (the host's, for a daemon started from a shell, a test or systemd),
//! mounts bpffs at /sys/fs/bpf there if none is, and hands back a
//! descriptor of that directory; pins are made through
//! /proc/self/fd/N. `--bpffs DIR` (RLVS_BPFFS) names another bpffs.

use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
const SO_NETNS_COOKIE: libc::c_int = 71;

/// The pin directory of this network namespace.
pub struct PinDir {
    pub path: PathBuf,
    /// Keeps the host's bpffs reachable through /proc/self/fd.
    _root: Option<OwnedFd>,
}

/// This network namespace's cookie.
pub fn netns_cookie() -> Result<u64> {
    // SAFETY: a plain socket, closed on drop of the OwnedFd.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        bail!("socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fd is fresh and ours.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cookie`.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            &mut cookie as *mut u64 as *mut _,
            &mut len,
        )
    };
    if r != 0 {
        bail!("SO_NETNS_COOKIE: {} (the kernel needs 5.14 or later)", std::io::Error::last_os_error());
    }
    Ok(cookie)
}

fn is_bpffs(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_encoded_bytes()) else { return false };
    // SAFETY: statfs into a zeroed struct.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: c is a valid C string.
    unsafe { libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == BPF_FS_MAGIC }
}

fn mount_bpffs(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    let target = CString::new(path.as_os_str().as_encoded_bytes())?;
    // SAFETY: plain mount(2) with valid C strings.
    let r =
        unsafe { libc::mount(c"bpf".as_ptr(), target.as_ptr(), c"bpf".as_ptr(), 0, c"mode=0700".as_ptr() as *const _) };
    if r != 0 {
        bail!("mounting bpffs on {}: {}", path.display(), std::io::Error::last_os_error());
    }
    Ok(())
}

fn mount_ns(pid: &str) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()
}

/// Opens (creating it) the pin directory of this network namespace.
pub fn open(bpffs: Option<&Path>) -> Result<PinDir> {
    let cookie = netns_cookie()?;
    let (root, keep) = match bpffs {
        Some(p) => {
            if !is_bpffs(p) {
                mount_bpffs(p)?;
            }
            (p.to_path_buf(), None)
        }
        None => {
            let ppid = std::os::unix::process::parent_id().to_string();
            let private = matches!((mount_ns("self"), mount_ns(&ppid)), (Some(a), Some(b)) if a != b);
            let root = Path::new("/sys/fs/bpf");
            if private {
                let fd = parent_bpffs(&ppid).context("reaching the host's bpffs from this mount namespace")?;
                (PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())), Some(fd))
            } else {
                if !is_bpffs(root) {
                    mount_bpffs(root)?;
                }
                (root.to_path_buf(), None)
            }
        }
    };
    let path = root.join("rlvs").join(cookie.to_string());
    std::fs::create_dir_all(&path).with_context(|| format!("creating the pin directory {}", path.display()))?;
    Ok(PinDir { path, _root: keep })
}

/// A descriptor of /sys/fs/bpf in the mount namespace of process `pid`,
/// mounting bpffs there first if none is. Done in a child that enters that
/// namespace (only a single-threaded process may) and sends the descriptor
/// back; the child uses nothing but system calls, as a child forked from a
/// threaded process must.
fn parent_bpffs(pid: &str) -> Result<OwnedFd> {
    let ns = CString::new(format!("/proc/{pid}/ns/mnt"))?;
    let dir = c"/sys/fs/bpf";
    let mut pair = [0 as RawFd; 2];
    // SAFETY: socketpair writes two fds.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0, pair.as_mut_ptr()) } != 0 {
        bail!("socketpair: {}", std::io::Error::last_os_error());
    }
    // SAFETY: both fds are fresh and ours.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])) };
    // SAFETY: fork; the child below only makes system calls and exits.
    let child = unsafe { libc::fork() };
    if child < 0 {
        bail!("fork: {}", std::io::Error::last_os_error());
    }
    if child == 0 {
        // SAFETY: async-signal-safe system calls only, then _exit.
        unsafe {
            let code = child_send_bpffs(ns.as_ptr(), dir.as_ptr(), theirs.as_raw_fd());
            libc::_exit(code);
        }
    }
    drop(theirs);
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(child, &mut status, 0) };
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        let why = match libc::WEXITSTATUS(status) {
            1 => "cannot open its mount namespace",
            2 => "cannot enter its mount namespace",
            3 => "cannot mount bpffs on /sys/fs/bpf there",
            4 => "cannot open /sys/fs/bpf there",
            _ => "the helper failed",
        };
        bail!("the parent process's mount namespace: {why}");
    }
    receive_fd(ours.as_raw_fd())
}

/// The child's work: exit status 0 once the descriptor is sent.
///
/// # Safety
/// Runs in a child just forked from a threaded process: only
/// async-signal-safe calls; `ns` and `dir` are NUL-terminated strings that
/// outlive the call, and `sock` is an open socket.
unsafe fn child_send_bpffs(ns: *const libc::c_char, dir: *const libc::c_char, sock: RawFd) -> i32 {
    let nsfd = libc::open(ns, libc::O_RDONLY | libc::O_CLOEXEC);
    if nsfd < 0 {
        return 1;
    }
    if libc::setns(nsfd, libc::CLONE_NEWNS) != 0 {
        return 2;
    }
    let mut st: libc::statfs = std::mem::zeroed();
    if libc::statfs(dir, &mut st) != 0 || st.f_type as i64 != BPF_FS_MAGIC {
        let r = libc::mount(c"bpf".as_ptr(), dir, c"bpf".as_ptr(), 0, c"mode=0700".as_ptr() as *const _);
        if r != 0 {
            return 3;
        }
    }
    let fd = libc::open(dir, libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC);
    if fd < 0 {
        return 4;
    }
    let mut byte = 0u8;
    let mut iov = libc::iovec { iov_base: &mut byte as *mut u8 as *mut _, iov_len: 1 };
    let mut cbuf = [0u8; 64];
    let mut msg: libc::msghdr = std::mem::zeroed();
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut _;
    msg.msg_controllen = libc::CMSG_SPACE(4) as _;
    let cmsg = libc::CMSG_FIRSTHDR(&msg);
    (*cmsg).cmsg_level = libc::SOL_SOCKET;
    (*cmsg).cmsg_type = libc::SCM_RIGHTS;
    (*cmsg).cmsg_len = libc::CMSG_LEN(4) as _;
    std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut i32, fd);
    if libc::sendmsg(sock, &msg, 0) < 0 {
        return 5;
    }
    0
}

fn receive_fd(sock: RawFd) -> Result<OwnedFd> {
    let mut byte = 0u8;
    let mut iov = libc::iovec { iov_base: &mut byte as *mut u8 as *mut _, iov_len: 1 };
    let mut cbuf = [0u8; 64];
    // SAFETY: a zeroed msghdr pointing at our buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut _;
    msg.msg_controllen = cbuf.len() as _;
    // SAFETY: recvmsg into the buffers above.
    if unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) } < 0 {
        bail!("receiving the bpffs descriptor: {}", std::io::Error::last_os_error());
    }
    // SAFETY: walking the control messages the kernel wrote.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
            bail!("no descriptor came back");
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg) as *const i32);
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

impl PinDir {
    /// A pin directory at `path` (already on bpffs).
    pub fn at(path: PathBuf) -> PinDir {
        PinDir { path, _root: None }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// How many pins the directory holds.
    pub fn count(&self) -> usize {
        std::fs::read_dir(&self.path).map(|d| d.count()).unwrap_or(0)
    }

    /// Removes every pin (maps and links: forwarding stops once the last
    /// descriptor closes) and the directory.
    pub fn remove_all(&self) {
        if let Ok(entries) = std::fs::read_dir(&self.path) {
            for e in entries.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let _ = std::fs::remove_dir(&self.path);
    }

    /// Removes `rlvs/` itself when no namespace has pins left in it (the
    /// packages' removal; a daemon never does, as another may be creating
    /// its directory there at that moment).
    pub fn remove_root_if_empty(&self) {
        if let Some(parent) = self.path.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// The interface a pinned XDP link is attached to (0 once the device is
/// gone), read with BPF_OBJ_GET and BPF_OBJ_GET_INFO_BY_FD (aya 0.14 does
/// not show it).
pub fn xdp_link_ifindex(path: &Path) -> Option<u32> {
    const BPF_OBJ_GET: libc::c_long = 7;
    const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    const BPF_LINK_TYPE_XDP: u32 = 6;
    let c = CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let mut attr = [0u64; 16];
    attr[0] = c.as_ptr() as u64;
    // SAFETY: bpf(2) with an attribute union larger than the kernel reads.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_OBJ_GET, attr.as_mut_ptr(), std::mem::size_of_val(&attr)) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd is fresh and ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let mut info = [0u8; 256];
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&(fd.as_raw_fd() as u32).to_ne_bytes());
    attr[4..8].copy_from_slice(&(info.len() as u32).to_ne_bytes());
    attr[8..16].copy_from_slice(&(info.as_mut_ptr() as u64).to_ne_bytes());
    // SAFETY: the kernel writes at most info_len bytes into `info`.
    let r = unsafe { libc::syscall(libc::SYS_bpf, BPF_OBJ_GET_INFO_BY_FD, attr.as_mut_ptr(), attr.len()) };
    if r != 0 || u32::from_ne_bytes(info[0..4].try_into().ok()?) != BPF_LINK_TYPE_XDP {
        return None;
    }
    // The union after type, id and prog_id is 8-byte aligned: offset 16.
    Some(u32::from_ne_bytes(info[16..20].try_into().ok()?))
}

/// Removes pin directories under `root/rlvs` whose links are all gone
/// (their namespace's devices deleted): what a daemon killed in a
/// namespace that was then removed leaves behind.
pub fn collect_garbage(dir: &PinDir) {
    let Some(parent) = dir.path.parent() else { return };
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p == dir.path {
            continue;
        }
        let links: Vec<PathBuf> = std::fs::read_dir(&p)
            .map(|d| d.flatten().map(|f| f.path()).filter(|f| f.to_string_lossy().contains("/link-")).collect())
            .unwrap_or_default();
        // A directory without links is being set up by another daemon,
        // unless it has been so for a minute (one that failed to start);
        // a link that cannot be read is taken for alive.
        let stale_setup = links.is_empty()
            && std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > std::time::Duration::from_secs(60)));
        if stale_setup || (!links.is_empty() && links.iter().all(|l| xdp_link_ifindex(l) == Some(0))) {
            tracing::info!(dir = %p.display(), "removing pins whose devices are gone");
            PinDir { path: p, _root: None }.remove_all();
        }
    }
}
