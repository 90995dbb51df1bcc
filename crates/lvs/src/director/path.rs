//! The per-packet half of the director: connection lookup, scheduling of
//! new connections, the TCP state machine with its counters, statistics, and
//! the timers that expire connections and purge the destination trash.

use super::*;
use crate::conn::{Removed, Target};

impl Director {
    // ------------------------------------------------------------ packet path

    /// Decides what to do with an IPv4 packet (`l3` starts at the IP header)
    /// that came in over `ingress`. Connection state, counters and
    /// statistics are updated; the bytes are not changed here (the
    /// transmitters in `fwd` do that once the shell has a next hop).
    pub fn process_ipv4(&mut self, l3: &[u8], ingress: Option<Hop>, now: Time) -> Verdict {
        let Ok(ip) = Ipv4Packet::new_checked(l3) else {
            return Verdict::NotOurs;
        };
        let protocol = match ip.protocol() {
            IpProtocol::Tcp => Protocol::Tcp,
            IpProtocol::Udp => Protocol::Udp,
            _ => return Verdict::NotOurs,
        };
        // Only whole datagrams carry ports; the kernel reassembles first, the
        // userspace engine leaves fragments to the kernel.
        if ip.is_fragment() {
            return Verdict::NotOurs;
        }
        let (cport, vport, flags) = match protocol {
            Protocol::Tcp => match TcpPacket::new_checked(ip.payload()) {
                Ok(t) => (t.src_port(), t.dst_port(), Some(TcpSeg::of(&t))),
                Err(_) => return self.malformed(protocol, ip.dst_addr().into(), ip.payload()),
            },
            _ => match UdpPacket::new_checked(ip.payload()) {
                Ok(u) => (u.src_port(), u.dst_port(), None),
                Err(_) => return self.malformed(protocol, ip.dst_addr().into(), ip.payload()),
            },
        };
        let key = ConnKey { protocol, caddr: ip.src_addr().into(), cport, vaddr: ip.dst_addr().into(), vport };
        let bytes = usize::from(ip.total_len());
        match self.process(key, flags, bytes, ingress, now) {
            Verdict::NotOurs => self.process_reply(key, flags.map(|s| s.flags), bytes, now),
            v => v,
        }
    }

    /// As [`Director::process_ipv4`] for IPv6 (`l3` starts at the fixed
    /// header; a transport header behind extension headers is not ours).
    pub fn process_ipv6(&mut self, l3: &[u8], ingress: Option<Hop>, now: Time) -> Verdict {
        let Ok(ip) = Ipv6Packet::new_checked(l3) else {
            return Verdict::NotOurs;
        };
        let protocol = match ip.next_header() {
            IpProtocol::Tcp => Protocol::Tcp,
            IpProtocol::Udp => Protocol::Udp,
            _ => return Verdict::NotOurs,
        };
        let (cport, vport, flags) = match protocol {
            Protocol::Tcp => match TcpPacket::new_checked(ip.payload()) {
                Ok(t) => (t.src_port(), t.dst_port(), Some(TcpSeg::of(&t))),
                Err(_) => return self.malformed(protocol, ip.dst_addr().into(), ip.payload()),
            },
            _ => match UdpPacket::new_checked(ip.payload()) {
                Ok(u) => (u.src_port(), u.dst_port(), None),
                Err(_) => return self.malformed(protocol, ip.dst_addr().into(), ip.payload()),
            },
        };
        let key = ConnKey { protocol, caddr: ip.src_addr().into(), cport, vaddr: ip.dst_addr().into(), vport };
        let bytes = ip.total_len();
        match self.process(key, flags, bytes, ingress, now) {
            Verdict::NotOurs => self.process_reply(key, flags.map(|s| s.flags), bytes, now),
            v => v,
        }
    }

    /// ip_vs_out: a packet from a real server on a connection whose replies
    /// pass the director. `key` is the packet's own (source first).
    fn process_reply(&mut self, key: ConnKey, flags: Option<TcpFlags>, bytes: usize, now: Time) -> Verdict {
        let out =
            OutKey { protocol: key.protocol, daddr: key.caddr, dport: key.cport, caddr: key.vaddr, cport: key.vport };
        let Some(cid) = self.conns.lookup_out(&out) else { return Verdict::NotOurs };
        let timeout = match flags {
            Some(f) => self.set_tcp_state(cid, Direction::Output, f),
            None => self.timeouts.udp,
        };
        let c = self.conns.get_mut(cid);
        c.expires = now + Span::from_secs(u64::from(timeout));
        let c = self.conns.get(cid);
        let ck = self.conns.key(c);
        let client = (c.fwd == FwdMethod::FullNat).then_some((ck.caddr, ck.cport));
        let (vaddr, vport, seq_adjust) = (ck.vaddr, ck.vport, c.seq_adjust);
        let (hop, dest) = (self.conns.return_hop(c), self.conns.target(c).dest);
        let reply = Reply { vaddr, vport, client, hop, caddr: ck.caddr, seq_adjust };
        let d = self.dests.get_mut(dest);
        d.stats.count_out(bytes);
        if let Some(sid) = d.svc {
            self.svc_mut(sid).stats.count_out(bytes);
        }
        self.stats.count_out(bytes);
        Verdict::Reply(reply)
    }

    fn malformed(&self, protocol: Protocol, vaddr: IpAddr, l4: &[u8]) -> Verdict {
        // A truncated header to a service address is ours to drop; anything
        // else is the kernel's business.
        let vport = if l4.len() >= 4 {
            u16::from_be_bytes([l4[2], l4[3]])
        } else {
            return Verdict::NotOurs;
        };
        match self.by_key.contains_key(&ServiceKey::new(protocol, vaddr, vport)) {
            true => Verdict::Drop(DropReason::Malformed),
            false => Verdict::NotOurs,
        }
    }

    /// The protocol-independent part of packet processing, from the client side.
    pub fn process(
        &mut self,
        key: ConnKey,
        seg: Option<TcpSeg>,
        bytes: usize,
        ingress: Option<Hop>,
        now: Time,
    ) -> Verdict {
        let flags = seg.map(|s| s.flags);
        if let Some(cid) = self.conns.lookup(&key) {
            // conn_reuse_mode 1: a SYN on a TIME_WAIT entry starts afresh.
            let reuse = flags.is_some_and(|f| f.syn() && !f.ack() && !f.rst())
                && self.conns.get(cid).state == ConnState::Tcp(TcpState::TimeWait);
            if !reuse {
                self.learn_return_hop(cid, ingress);
                return self.forward(cid, flags, bytes, now);
            }
            self.expire_conn(cid, now);
        }
        let Some(sid) = self.find_service(key.protocol, key.vaddr, key.vport) else {
            return Verdict::NotOurs;
        };
        // Only a mid-flow segment asks whether its service is sloppy.
        let opens = flags.is_none_or(|f| {
            !f.rst()
                && (f.syn()
                    || self.sloppy_tcp
                    || (!self.sloppy_services.is_empty()
                        && self.sloppy_services.contains(&live_ref(&self.services, sid).key)))
        });
        if !opens {
            return Verdict::Drop(DropReason::NoConnection);
        }
        if let Some(refused) = self.admit_new_conn(now) {
            return Verdict::Drop(refused);
        }
        let input = SchedInput {
            protocol: key.protocol,
            caddr: key.caddr,
            cport: key.cport,
            vaddr: key.vaddr,
            vport: key.vport,
            svc_flags: 0,
        };
        let svc = live(&mut self.services, sid);
        let input = SchedInput { svc_flags: svc.config.flags, ..input };
        let (svc_port, svc_flags) = (svc.key.port, svc.config.flags);
        let (did, control) = if persist::is_persistent(&svc.config) {
            match self.persist_pick(sid, &key, &input, now) {
                Some((d, t)) => (d, Some(t)),
                None => return Verdict::Drop(DropReason::NoDestination),
            }
        } else {
            let list = crate::dest::DestList::new(&svc.dests, &self.dests);
            let Some(idx) = svc.sched.schedule(list, &input, now) else {
                return Verdict::Drop(DropReason::NoDestination);
            };
            (svc.dests[idx], None)
        };
        let d = self.dests.get(did);
        let dport = match d.fwd {
            // DR and TUN cannot change the port: the packet reaches the real
            // server addressed to the VIP.
            FwdMethod::DirectRoute | FwdMethod::Tunnel => key.vport,
            // A port-zero service keeps the client's port.
            _ if key.vport != svc_port || d.port == 0 => key.vport,
            _ => d.port,
        };
        let daddr = d.addr;
        let fnat = if d.fwd == FwdMethod::FullNat {
            match self.allocate_local(sid, key.protocol, daddr, dport, now) {
                Some(l) => Some(l),
                None => return Verdict::Drop(DropReason::NoLocalPort),
            }
        } else {
            None
        };
        let Some(cid) = self.bind_new_conn(key, Target { dest: did, daddr, dport }, now, control, fnat) else {
            if let Some((laddr, lport)) = fnat {
                let local = fullnat::LocalKey { laddr, protocol: key.protocol, raddr: daddr, rport: dport };
                self.ports.release(local, lport);
            }
            return Verdict::Drop(DropReason::NoLocalPort);
        };
        if let (Some((laddr, lport)), Some(seg)) = (fnat, seg) {
            self.conns.get_mut(cid).seq_adjust = Some(self.seq_adjust(seg, (laddr, lport), (daddr, dport), now));
        }
        self.conns.set_return_hop(cid, ingress);
        let verdict = self.forward(cid, flags, bytes, now);
        if svc_flags & crate::types::svc_flags::ONEPACKET != 0 && key.protocol == Protocol::Udp {
            // One-packet scheduling: every datagram is scheduled on its own.
            self.expire_conn(cid, now);
        }
        verdict
    }

    /// ip_vs_service_find: the exact service, else the port-zero one.
    /// The real server a new connection from `caddr:cport` to
    /// `vaddr:vport` would get now, without opening it (`rlvs ctl pick`):
    /// what an operator compares across directors behind ECMP. Persistence
    /// templates are not consulted; a scheduler that keeps state (rr, wrr)
    /// moves on as if the connection had been made.
    pub fn pick(
        &mut self,
        protocol: Protocol,
        caddr: IpAddr,
        cport: u16,
        vaddr: IpAddr,
        vport: u16,
        now: Time,
    ) -> Option<(IpAddr, u16)> {
        let sid = self.find_service(protocol, vaddr, vport)?;
        let svc = live(&mut self.services, sid);
        let input = SchedInput { protocol, caddr, cport, vaddr, vport, svc_flags: svc.config.flags };
        let list = crate::dest::DestList::new(&svc.dests, &self.dests);
        let idx = svc.sched.schedule(list, &input, now)?;
        let d = self.dests.get(svc.dests[idx]);
        Some((d.addr, d.port))
    }

    pub(super) fn find_service(&self, protocol: Protocol, vaddr: IpAddr, vport: u16) -> Option<SvcId> {
        self.by_key
            .get(&ServiceKey::new(protocol, vaddr, vport))
            .or_else(|| self.by_key.get(&ServiceKey::new(protocol, vaddr, 0)))
            .copied()
    }

    /// Binds a new connection to `target`; None (nothing changed) when the
    /// table cannot take its FULLNAT local address.
    fn bind_new_conn(
        &mut self,
        key: ConnKey,
        target: Target,
        now: Time,
        control: Option<TemplateId>,
        fnat: Option<(IpAddr, u16)>,
    ) -> Option<ConnId> {
        let state = match key.protocol {
            Protocol::Udp => ConnState::Udp,
            _ => ConnState::Tcp(TcpState::None),
        };
        let fwd = self.dests.get(target.dest).fwd;
        let cid = self.conns.insert(Conn::new(fwd, state, now, control), key, target, fnat)?;
        self.emit_conn(|| Event::ConnAdded(key));
        if let Some(t) = control {
            self.templates.get_mut(t).controlled += 1;
        }
        let d = self.dests.get_mut(target.dest);
        // New connections start inactive (IP_VS_CONN_F_INACTIVE is part of the
        // destination's conn_flags) and become active on reaching ESTABLISHED.
        d.inactconns += 1;
        d.refs += 1;
        d.stats.conns += 1;
        d.check_overload_after_bind();
        let sid = d.svc.expect("scheduled destination is in a service");
        self.svc_mut(sid).stats.conns += 1;
        self.stats.conns += 1;
        Some(cid)
    }

    fn forward(&mut self, cid: ConnId, flags: Option<TcpFlags>, bytes: usize, now: Time) -> Verdict {
        let target = self.conns.target(self.conns.get(cid));
        let did = target.dest;
        if !self.dests.get(did).available {
            // expire_nodest_conn is 0 by default: drop without refreshing the timer.
            return Verdict::Drop(DropReason::DestUnavailable);
        }
        let timeout = match flags {
            Some(f) => self.set_tcp_state(cid, Direction::Input, f),
            None => self.timeouts.udp,
        };
        self.conns.get_mut(cid).expires = now + Span::from_secs(u64::from(timeout));
        let tun = self.dests.try_get(did).and_then(|d| {
            (d.fwd == FwdMethod::Tunnel)
                .then(|| crate::fwd::tun::TunKind::from_config(d.tun_type, d.tun_port, d.tun_flags))
                .flatten()
        });
        let c = self.conns.get(cid);
        let fwd = Forward {
            method: c.fwd,
            snat: self.conns.fnat(c),
            daddr: target.daddr,
            dport: target.dport,
            dest: did,
            tun,
            seq_adjust: c.seq_adjust,
        };
        let d = self.dests.get_mut(did);
        d.stats.count_in(bytes);
        if let Some(sid) = d.svc {
            self.svc_mut(sid).stats.count_in(bytes);
        }
        self.stats.count_in(bytes);
        let c = self.conns.get_mut(cid);
        c.in_pkts = c.in_pkts.saturating_add(1);
        self.sync_after_packet(cid, now);
        Verdict::Forward(fwd)
    }

    /// set_tcp_state: moves the connection and its destination's counters;
    /// returns the new state's timeout.
    pub(super) fn set_tcp_state(&mut self, cid: ConnId, dir: Direction, flags: TcpFlags) -> u32 {
        let dest = self.conns.target(self.conns.get(cid)).dest;
        let c = self.conns.get_mut(cid);
        let mut dir = dir;
        if c.no_output {
            if dir == Direction::Output {
                c.no_output = false;
            } else {
                dir = Direction::InputOnly;
            }
        }
        let ConnState::Tcp(old) = c.state else {
            return self.timeouts.udp;
        };
        let new = tcp::next_state_in(old, dir, flags, self.defence.secure_tcp());
        if new != old {
            let d = self.dests.get_mut(dest);
            if !c.inactive && new != TcpState::Established {
                d.activeconns -= 1;
                d.inactconns += 1;
                c.inactive = true;
            } else if c.inactive && new == TcpState::Established {
                d.activeconns += 1;
                d.inactconns -= 1;
                c.inactive = false;
            }
        }
        c.state = ConnState::Tcp(new);
        if new != old && self.conn_events {
            let key = self.conns.key(self.conns.get(cid));
            self.events.push_back(Event::ConnChanged { key, from: ConnState::Tcp(old), to: ConnState::Tcp(new) });
        }
        self.timeouts.tcp[new as usize]
    }

    // ---------------------------------------------------------------- timers

    /// Expires connections whose timers ran out and purges trashed
    /// destinations nobody uses any more. Call about once a second.
    pub fn expire(&mut self, now: Time) -> usize {
        self.expire_with(now, |_, _| None)
    }

    /// How long until the estimator's next tick (zero: due; None before
    /// the first call has set its phase).
    pub fn estimate_due_in(&self, now: Time) -> Option<Span> {
        (self.next_estimate != Time::ZERO).then(|| Span(self.next_estimate.0.saturating_sub(now.0)))
    }

    /// Runs the 2-second estimator ticks that are due (the first one two
    /// seconds after the first call). The shell calls it as a tick comes
    /// due, as the kernel's timer fires: listings show what it folds.
    pub fn estimate(&mut self, now: Time) {
        if self.next_estimate == Time::ZERO {
            self.next_estimate = now + ESTIMATOR_PERIOD;
            return;
        }
        while now >= self.next_estimate {
            self.est.tick(&self.stats);
            for svc in self.services.iter_mut().flatten() {
                svc.est.tick(&svc.stats);
            }
            for &id in self.order.iter() {
                let svc = live_ref(&self.services, id);
                for &d in &svc.dests {
                    let d = self.dests.get_mut(d);
                    d.est.tick(&d.stats);
                }
            }
            self.next_estimate = self.next_estimate + ESTIMATOR_PERIOD;
        }
    }

    pub(super) fn expire_conn(&mut self, cid: ConnId, now: Time) {
        let out = if self.conn_events { self.conns.out_key(self.conns.get(cid)) } else { None };
        let Removed { conn: c, key, target, fnat } = self.conns.remove(cid);
        let state = c.state;
        self.emit_conn(|| Event::ConnRemoved { key, out, state });
        if let Some((laddr, lport)) = fnat {
            let local = fullnat::LocalKey { laddr, protocol: key.protocol, raddr: target.daddr, rport: target.dport };
            self.ports.release(local, lport);
        }
        if let Some(t) = c.control {
            self.templates.get_mut(t).controlled -= 1;
        }
        let d = self.dests.get_mut(target.dest);
        if c.inactive {
            d.inactconns -= 1;
        } else {
            d.activeconns -= 1;
        }
        d.refs -= 1;
        d.check_overload_after_unbind();
        if d.svc.is_none() && d.refs == 0 {
            d.idle_since = Some(now);
        }
    }

    pub(super) fn purge_trash(&mut self, now: Time) {
        let dests = &mut self.dests;
        self.trash.retain(|&id| {
            let d = dests.get_mut(id);
            if d.refs > 0 {
                return true;
            }
            match d.idle_since {
                Some(t) if now - t >= DEST_TRASH_PERIOD => {
                    dests.remove(id);
                    false
                }
                Some(_) => true,
                None => {
                    d.idle_since = Some(now);
                    true
                }
            }
        });
    }
}
