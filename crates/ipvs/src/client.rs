//! The thin shell: a blocking generic netlink socket that resolves the
//! IPVS family and exchanges the codec's messages with the kernel.

use crate::attr;
use crate::msg::IpvsMessage;
use netlink_packet_core::{
    NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable, NLM_F_ACK, NLM_F_DUMP,
    NLM_F_MULTIPART, NLM_F_REQUEST,
};
use netlink_packet_generic::ctrl::nlas::GenlCtrlAttrs;
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::GenlMessage;
use netlink_sys::{protocols::NETLINK_GENERIC, Socket, SocketAddr};
use std::io;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No IPVS in this kernel (or its module is not loaded).
    #[error(
        "kernel IPVS is not available: the kernel has no \"IPVS\" generic netlink family (is the ip_vs module loaded?)"
    )]
    NotAvailable,
    /// The kernel refused the request with this errno.
    #[error("kernel IPVS refused the request: {}", io::Error::from_raw_os_error(*.0))]
    Kernel(i32),
    #[error("netlink: {0}")]
    Io(#[from] io::Error),
    #[error("kernel IPVS answered something unreadable: {0}")]
    Decode(String),
}

impl Error {
    /// The errno, for answers that must match ipvsadm's messages.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Kernel(e) => Some(*e),
            Error::Io(e) => e.raw_os_error(),
            _ => None,
        }
    }
}

pub struct Client {
    sock: Socket,
    family: u16,
    seq: u32,
    buf: Vec<u8>,
}

impl Client {
    /// Opens a socket and resolves the IPVS family; `NotAvailable` when
    /// the kernel has none.
    pub fn connect() -> Result<Client, Error> {
        let mut sock = Socket::new(NETLINK_GENERIC)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        let mut c = Client { sock, family: 0, seq: 0, buf: vec![0; 64 * 1024] };
        let ask = GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName(attr::FAMILY_NAME.to_string())],
        };
        let answers = match c.exchange(GenlMessage::from_payload(ask), NLM_F_REQUEST) {
            Err(Error::Kernel(ENOENT)) => return Err(Error::NotAvailable),
            other => other?,
        };
        c.family = answers
            .iter()
            .flat_map(|m: &GenlMessage<GenlCtrl>| &m.payload.nlas)
            .find_map(|a| match a {
                GenlCtrlAttrs::FamilyId(id) => Some(*id),
                _ => None,
            })
            .ok_or(Error::NotAvailable)?;
        Ok(c)
    }

    /// As ipvsadm starts: connect, and when the kernel has no IPVS family
    /// yet, `modprobe ip_vs` and try once more. `loaded` says whether the
    /// module had to be loaded; the error keeps why it could not be.
    pub fn connect_loading() -> Result<(Client, bool), (Error, String)> {
        match Client::connect() {
            Ok(c) => return Ok((c, false)),
            Err(Error::NotAvailable) => {}
            Err(e) => {
                let why = e.to_string();
                return Err((e, why));
            }
        }
        let why = match std::process::Command::new("modprobe").args(["-q", "ip_vs"]).status() {
            Ok(s) if s.success() => match Client::connect() {
                Ok(c) => return Ok((c, true)),
                Err(e) => format!("modprobe ip_vs succeeded but {e}"),
            },
            Ok(s) => format!("no IPVS netlink family, and modprobe ip_vs failed ({s})"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                "no IPVS netlink family, and no modprobe to load ip_vs".to_string()
            }
            Err(e) => format!("no IPVS netlink family, and modprobe ip_vs could not run: {e}"),
        };
        Err((Error::NotAvailable, why))
    }

    /// A request the kernel acknowledges (adds, edits, deletes, flush).
    pub fn request(&mut self, m: IpvsMessage) -> Result<(), Error> {
        self.exchange(self.genl(m), NLM_F_REQUEST | NLM_F_ACK).map(|_: Vec<GenlMessage<IpvsMessage>>| ())
    }

    /// A request with one answer (GET_INFO, GET_CONFIG, one service).
    pub fn get(&mut self, m: IpvsMessage) -> Result<IpvsMessage, Error> {
        let mut answers = self.exchange(self.genl(m), NLM_F_REQUEST)?;
        answers.pop().map(|g| g.payload).ok_or_else(|| Error::Decode("no answer".into()))
    }

    /// A dump: every service, every destination of one, the daemons.
    pub fn dump(&mut self, m: IpvsMessage) -> Result<Vec<IpvsMessage>, Error> {
        Ok(self.exchange(self.genl(m), NLM_F_REQUEST | NLM_F_DUMP)?.into_iter().map(|g| g.payload).collect())
    }

    fn genl(&self, m: IpvsMessage) -> GenlMessage<IpvsMessage> {
        let mut g = GenlMessage::from_payload(m);
        g.set_resolved_family_id(self.family);
        g
    }

    /// Sends one message and collects what answers it, until its single
    /// reply, the end of a dump, an ACK or an error.
    fn exchange<F>(&mut self, payload: F, flags: u16) -> Result<Vec<F>, Error>
    where
        F: NetlinkSerializable + NetlinkDeserializable + std::fmt::Debug,
    {
        self.seq = self.seq.wrapping_add(1);
        let mut hdr = NetlinkHeader::default();
        hdr.flags = flags;
        hdr.sequence_number = self.seq;
        let mut req = NetlinkMessage::new(hdr, NetlinkPayload::InnerMessage(payload));
        req.finalize();
        let mut out = vec![0; req.buffer_len()];
        req.serialize(&mut out);
        self.sock.send(&out, 0)?;
        let mut answers = Vec::new();
        loop {
            let n = self.sock.recv(&mut &mut self.buf[..], 0)?;
            let mut off = 0;
            while off < n {
                let m =
                    NetlinkMessage::<F>::deserialize(&self.buf[off..n]).map_err(|e| Error::Decode(e.to_string()))?;
                let len = m.header.length as usize;
                if len == 0 {
                    return Ok(answers);
                }
                off += (len + 3) & !3;
                if m.header.sequence_number != self.seq {
                    continue;
                }
                match m.payload {
                    NetlinkPayload::InnerMessage(inner) => {
                        answers.push(inner);
                        if m.header.flags & NLM_F_MULTIPART == 0 && flags & (NLM_F_ACK | NLM_F_DUMP) == 0 {
                            return Ok(answers);
                        }
                    }
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(answers),
                            Some(code) => Err(Error::Kernel(-code.get())),
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(answers),
                    _ => {}
                }
            }
        }
    }
}

const ENOENT: i32 = 2;
