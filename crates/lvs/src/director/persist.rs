//! Persistence templates (ip_vs_sched_persist): with `-p`, the first
//! connection of a client network (its address under the `-M` mask) to a
//! service creates a template naming the real server, and later connections
//! follow the template instead of the scheduler. A template expires after
//! the service's persistence timeout without use, but never while
//! connections it placed are alive. It counts in the real server's
//! persistconns. A template whose real server was deleted is set aside
//! (kept for its connections, no longer found) and a new one is scheduled;
//! a quiesced server keeps its templates (expire_quiescent_template = 0).

use super::*;
use crate::conn::TemplateId;
use crate::sched::SchedInput;
use crate::types::svc_flags;
use std::net::Ipv6Addr;

/// The FTP control port: its templates ignore the virtual port so the data
/// connections follow.
const FTPPORT: u16 = 21;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TemplateKey {
    pub protocol: Protocol,
    /// The client address under the service's netmask.
    pub caddr: IpAddr,
    pub vaddr: IpAddr,
    /// The virtual port, or 0 for port-zero and FTP services.
    pub vport: u16,
}

#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub key: TemplateKey,
    pub dest: DestId,
    pub daddr: IpAddr,
    pub dport: u16,
    pub timeout: Span,
    pub expires: Time,
    /// Connections placed by this template (n_control).
    pub controlled: u32,
}

#[derive(Debug, Default)]
pub(crate) struct Templates {
    index: HashMap<TemplateKey, TemplateId, RandomState>,
    slots: Vec<Option<Template>>,
    free: Vec<u32>,
}

impl Templates {
    pub fn get_mut(&mut self, id: TemplateId) -> &mut Template {
        self.slots[id.index() as usize].as_mut().expect("live template")
    }

    fn insert(&mut self, t: Template) -> TemplateId {
        let key = t.key;
        let id = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(t);
                TemplateId::new(i)
            }
            None => {
                self.slots.push(Some(t));
                TemplateId::new(self.slots.len() as u32 - 1)
            }
        };
        self.index.insert(key, id);
        id
    }

    fn remove(&mut self, id: TemplateId) -> Template {
        let t = self.slots[id.index() as usize].take().expect("live template");
        if self.index.get(&t.key) == Some(&id) {
            self.index.remove(&t.key);
        }
        self.free.push(id.index());
        t
    }

    pub fn iter(&self) -> impl Iterator<Item = (TemplateId, &Template)> {
        self.slots.iter().enumerate().filter_map(|(i, t)| t.as_ref().map(|t| (TemplateId::new(i as u32), t)))
    }

    pub fn len(&self) -> usize {
        self.iter().count()
    }
}

/// The client network a template covers: IPv4 masked with the netmask,
/// IPv6 cut to the prefix length.
fn client_net(caddr: IpAddr, netmask: u32) -> IpAddr {
    match caddr {
        IpAddr::V4(a) => IpAddr::V4((u32::from(a) & netmask).into()),
        IpAddr::V6(a) => {
            let bits = netmask.min(128);
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask))
        }
    }
}

impl Director {
    /// Picks the real server for a new connection of a persistent service,
    /// through its template. Returns the destination and the template.
    pub(super) fn persist_pick(
        &mut self,
        sid: SvcId,
        key: &ConnKey,
        input: &SchedInput,
        now: Time,
    ) -> Option<(DestId, TemplateId)> {
        let svc = self.svc(sid);
        let (svc_port, netmask) = (svc.key.port, svc.config.netmask);
        let timeout = Span::from_secs(u64::from(svc.config.timeout));
        let follows_port = key.vport == svc_port && svc_port != FTPPORT;
        let tkey = TemplateKey {
            protocol: key.protocol,
            caddr: client_net(key.caddr, netmask),
            vaddr: key.vaddr,
            vport: if follows_port { key.vport } else { 0 },
        };
        if let Some(&tid) = self.templates.index.get(&tkey) {
            let t = self.templates.get_mut(tid);
            if self.dests.try_get(t.dest).is_some_and(|d| d.available) {
                t.expires = now + t.timeout;
                return Some((t.dest, tid));
            }
            // Its real server is gone: keep it for its connections only.
            self.templates.index.remove(&tkey);
        }
        let svc = live(&mut self.services, sid);
        let list = crate::dest::DestList::new(&svc.dests, &self.dests);
        let idx = svc.sched.schedule(list, input, now)?;
        let did = svc.dests[idx];
        let d = self.dests.get_mut(did);
        d.persistconns += 1;
        d.refs += 1;
        d.check_overload_after_bind();
        let t = Template {
            key: tkey,
            dest: did,
            daddr: d.addr,
            dport: if follows_port { d.port } else { 0 },
            timeout,
            expires: now + timeout,
            controlled: 0,
        };
        Some((did, self.templates.insert(t)))
    }

    /// Removes templates that ran out and control nothing; re-arms the ones
    /// still controlling connections.
    pub(super) fn expire_templates(&mut self, now: Time) {
        let due: Vec<TemplateId> = self.templates.iter().filter(|(_, t)| t.expires <= now).map(|(id, _)| id).collect();
        for id in due {
            let t = self.templates.get_mut(id);
            if t.controlled > 0 {
                t.expires = now + t.timeout;
                continue;
            }
            let t = self.templates.remove(id);
            let d = self.dests.get_mut(t.dest);
            d.persistconns -= 1;
            d.refs -= 1;
            d.check_overload_after_unbind();
            if d.svc.is_none() && d.refs == 0 {
                d.idle_since = Some(now);
            }
        }
    }

    /// A template announced by a sync master (sync.rs): a new one, or the
    /// known one's timer renewed (and its real server changed, if the
    /// master's did).
    pub(super) fn sync_template(
        &mut self,
        key: TemplateKey,
        dest: DestId,
        daddr: IpAddr,
        dport: u16,
        timeout: Span,
        now: Time,
    ) {
        if let Some(&tid) = self.templates.index.get(&key) {
            let t = self.templates.get_mut(tid);
            if t.dest == dest {
                t.expires = now + timeout;
                return;
            }
            // The master placed the network elsewhere: this one is set aside.
            self.templates.index.remove(&key);
        }
        let d = self.dests.get_mut(dest);
        d.persistconns += 1;
        d.refs += 1;
        let t = Template { key, dest, daddr, dport, timeout, expires: now + timeout, controlled: 0 };
        self.templates.insert(t);
    }

    pub(super) fn template_infos(&self, now: Time) -> Vec<ConnInfo> {
        self.templates
            .iter()
            .map(|(_, t)| ConnInfo {
                protocol: t.key.protocol,
                caddr: t.key.caddr,
                cport: 0,
                vaddr: t.key.vaddr,
                vport: t.key.vport,
                daddr: t.daddr,
                dport: t.dport,
                // A template's state is the protocol's state 0.
                state: if t.key.protocol == Protocol::Udp { "UDP" } else { "NONE" }.to_string(),
                expires: now.secs_until(t.expires),
            })
            .collect()
    }
}

/// Whether a service keeps clients on their real server.
pub(crate) fn is_persistent(config: &ServiceConfig) -> bool {
    config.flags & svc_flags::PERSISTENT != 0
}
