//! Validation of a received advertisement against the instance's
//! configuration, in keepalived's order and with its log messages: length,
//! TTL, version, authentication, interval (v2), type, address count,
//! checksum, unicast/multicast, address list, unicast source.

use crate::{Advert, InstanceConfig};
use rlvs_wire::vrrp::{Family, VrrpPacket, TYPE_ADVERTISEMENT};
use serde::Serialize;
use std::net::IpAddr;

/// What keepalived counts per instance (its SNMP statistics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub advert_rcvd: u64,
    pub advert_sent: u64,
    pub become_master: u64,
    pub release_master: u64,
    pub pri_zero_rcvd: u64,
    pub pri_zero_sent: u64,
    pub packet_len_err: u64,
    pub ip_ttl_err: u64,
    pub version_err: u64,
    pub invalid_type_rcvd: u64,
    pub addr_list_err: u64,
    pub invalid_authtype: u64,
    pub authtype_mismatch: u64,
    pub auth_failure: u64,
    pub checksum_err: u64,
    pub interval_mismatch: u64,
}

impl Stats {
    /// Adverts dropped as malformed or not for us, whatever the reason.
    pub fn rejected(&self) -> u64 {
        self.packet_len_err
            + self.ip_ttl_err
            + self.version_err
            + self.invalid_type_rcvd
            + self.addr_list_err
            + self.invalid_authtype
            + self.authtype_mismatch
            + self.auth_failure
            + self.checksum_err
            + self.interval_mismatch
    }
}

/// A checked advertisement, the fields the state machine needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub src: IpAddr,
    pub priority: u8,
    /// v3: the sender's advert interval in centiseconds.
    pub advert_int_cs: u16,
}

/// Why an advert was refused; the message is keepalived's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected(pub String);

pub fn check(cfg: &InstanceConfig, stats: &mut Stats, ad: &Advert<'_>, check_vips: bool) -> Result<Checked, Rejected> {
    let name = &cfg.name;
    let family = if cfg.vips.first().is_some_and(IpAddr::is_ipv6) { Family::V6 } else { Family::V4 };
    let p = match VrrpPacket::new_checked(ad.payload, family) {
        Ok(p) if p.expected_len() == ad.payload.len() => p,
        Ok(p) => {
            stats.packet_len_err += 1;
            return Err(Rejected(format!(
                "({name}) vrrp packet too {}, length {} and expect {}",
                if ad.payload.len() > p.expected_len() { "long" } else { "short" },
                ad.payload.len(),
                p.expected_len()
            )));
        }
        Err(_) => {
            stats.packet_len_err += 1;
            return Err(Rejected(format!("({name}) vrrp packet too short, length {}", ad.payload.len())));
        }
    };
    let unicast = !cfg.unicast_peers.is_empty();
    if !unicast && ad.ttl != 255 {
        stats.ip_ttl_err += 1;
        return Err(Rejected(format!("({name}) invalid TTL/HL. Received {} and expect 255", ad.ttl)));
    }
    if p.version() != cfg.version {
        stats.version_err += 1;
        return Err(Rejected(format!("({name}) wrong version. Received {} and expect {}", p.version(), cfg.version)));
    }
    if cfg.version == 2 {
        let want = if cfg.auth_pass.is_some() { 1 } else { 0 };
        if p.auth_type() > 2 {
            stats.invalid_authtype += 1;
            return Err(Rejected(format!("({name}) Invalid auth type: {}", p.auth_type())));
        }
        if p.auth_type() != want {
            stats.authtype_mismatch += 1;
            return Err(Rejected(format!("({name}) received a {} auth, expecting {want}!", p.auth_type())));
        }
        if let Some(pass) = &cfg.auth_pass {
            if p.auth_data() != Some(&pass[..]) {
                stats.auth_failure += 1;
                return Err(Rejected(format!("({name}) received an invalid passwd!")));
            }
        }
        let mine = cfg.advert_int.as_secs();
        if u64::from(p.advert_int()) != mine {
            stats.interval_mismatch += 1;
            return Err(Rejected(format!(
                "({name}) advertisement interval mismatch mine={mine} sec rcv'd={} sec",
                p.advert_int()
            )));
        }
    }
    if p.kind() != TYPE_ADVERTISEMENT {
        stats.invalid_type_rcvd += 1;
        return Err(Rejected(format!("({name}) Invalid packet type. {} and expect {TYPE_ADVERTISEMENT}", p.kind())));
    }
    if check_vips && usize::from(p.count()) != cfg.vips.len() {
        stats.addr_list_err += 1;
        return Err(Rejected(format!(
            "({name}) received an unexpected ip number count {}, expected {}!",
            p.count(),
            cfg.vips.len()
        )));
    }
    // IPv6: the kernel checks the checksum (IPV6_CHECKSUM) before we see it.
    if family == Family::V4 {
        let pseudo = (cfg.version == 3).then_some((ad.src, ad.dst));
        if !p.verify_checksum(pseudo) {
            stats.checksum_err += 1;
            return Err(Rejected(format!("({name}) Invalid VRRPv{} checksum", cfg.version)));
        }
    }
    if ad.dst.is_multicast() == unicast {
        stats.addr_list_err += 1;
        let (want, got) = if unicast { ("un", "mult") } else { ("mult", "un") };
        return Err(Rejected(format!("({name}) Expected {want}icast packet but received {got}icast packet")));
    }
    stats.advert_rcvd += 1;
    if check_vips {
        let got: Vec<IpAddr> = p.addresses().collect();
        if let Some(missing) = cfg.vips.iter().find(|v| !got.contains(v)) {
            stats.addr_list_err += 1;
            return Err(Rejected(format!(
                "({name}) ip address associated with VRID {} not present in MASTER advert: {missing}",
                cfg.vrid
            )));
        }
        if unicast && cfg.check_unicast_src {
            let Some(peer) = cfg.unicast_peers.iter().find(|peer| peer.addr == ad.src) else {
                return Err(Rejected(format!("({name}) unicast source address {} not a unicast peer", ad.src)));
            };
            if ad.ttl < peer.min_ttl || ad.ttl > peer.max_ttl {
                stats.ip_ttl_err += 1;
                return Err(Rejected(format!(
                    "({name}) invalid TTL/HL. Received {} and expect between {} and {}",
                    ad.ttl, peer.min_ttl, peer.max_ttl
                )));
            }
        }
    }
    if p.priority() == 0 {
        stats.pri_zero_rcvd += 1;
    }
    Ok(Checked { src: ad.src, priority: p.priority(), advert_int_cs: p.advert_int() })
}
