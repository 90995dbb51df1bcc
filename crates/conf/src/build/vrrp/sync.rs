//! Sync groups, and the checks across instances: group membership,
//! the groups' tracking, VRID conflicts.

use super::*;

impl Builder {
    pub(in crate::build) fn sync_group(&mut self, node: &Node, scripts: &[VrrpScript]) -> Option<SyncGroup> {
        let Some(name) = node.arg(0).map(str::to_string) else {
            self.bad(node, "vrrp_sync_group must have a name - skipping");
            return None;
        };
        let children = self.block(node)?;
        let mut g = SyncGroup {
            name: name.clone(),
            pos: node.pos().clone(),
            members: Vec::new(),
            track_interfaces: Vec::new(),
            track_scripts: Vec::new(),
            notify: Notifies::default(),
            global_tracking: false,
            sync_group_tracking_weight: false,
            notify_priority_changes: false,
        };
        // keepalived 2.2.7 leaves the sync group at a second group list:
        // what follows it is read at the top level, its own closing brace
        // included.
        let mut left = false;
        for n in children {
            if left {
                self.diags.push(
                    Diag::warning(n.pos(), format!("Unknown keyword '{}'", n.keyword()))
                        .with_hint(format!("keepalived stopped reading sync group {name} at its second group list")),
                );
                continue;
            }
            if !matches!(n.keyword(), "group" | "track_interface" | "track_script") {
                self.no_block(n);
            }
            match n.keyword() {
                "group" if !g.members.is_empty() => {
                    self.bad(n, &format!("Group list already specified for sync group {name}"));
                    left = true;
                }
                "group" => {
                    if let Some(kids) = self.block(n) {
                        if kids.is_empty() {
                            let end = n.block.as_ref().and_then(|b| b.close.clone()).unwrap_or_else(|| n.pos().clone());
                            self.diags.push(Diag::warning(
                                &end,
                                format!("Warning - sync group {name} has empty group block"),
                            ));
                        }
                        for k in kids {
                            for w in &k.words {
                                g.members.push((w.text.clone(), w.pos.clone()));
                            }
                        }
                    }
                }
                "track_interface" => {
                    if let Some(kids) = self.value_block(n, 0) {
                        for k in kids {
                            if let Some(t) = self.track_interface(k, &name, &g.track_interfaces) {
                                g.track_interfaces.push(t);
                            }
                        }
                    }
                }
                "track_script" => {
                    if let Some(kids) = self.value_block(n, 0) {
                        for k in kids {
                            if let Some(t) = self.track_script(k, &name, scripts, &g.track_scripts) {
                                g.track_scripts.push(t);
                            }
                        }
                    }
                }
                kw @ ("notify_backup" | "notify_master" | "notify_fault" | "notify_stop") => {
                    let slot = match kw {
                        "notify_backup" => &mut g.notify.backup,
                        "notify_master" => &mut g.notify.master,
                        "notify_fault" => &mut g.notify.fault,
                        _ => &mut g.notify.stop,
                    };
                    if slot.is_some() {
                        let msg = format!(
                            "vrrp group {name}: {kw} script already specified - ignoring {}",
                            n.arg(0).unwrap_or("")
                        );
                        self.bad(n, &msg);
                    } else {
                        let s = self.notify(n);
                        match kw {
                            "notify_backup" => g.notify.backup = s,
                            "notify_master" => g.notify.master = s,
                            "notify_fault" => g.notify.fault = s,
                            _ => g.notify.stop = s,
                        }
                    }
                }
                "notify" if g.notify.any.is_some() => {
                    let m = format!(
                        "vrrp group {name}: notify script already specified - ignoring {}",
                        n.arg(0).unwrap_or("")
                    );
                    self.bad(n, &m);
                }
                "notify" => g.notify.any = self.notify(n),
                "global_tracking" => {
                    self.bad(
                        n,
                        &format!(
                            "({name}) global_tracking is deprecated. Use track_interface/script/file on the sync group"
                        ),
                    );
                    g.global_tracking = true;
                }
                "sync_group_tracking_weight" => g.sync_group_tracking_weight = true,
                "notify_priority_changes" => match n.arg(0).map(str::to_ascii_lowercase).as_deref() {
                    None | Some("true" | "on" | "yes") => g.notify_priority_changes = true,
                    Some("false" | "off" | "no") => g.notify_priority_changes = false,
                    Some(_) => {
                        let m = format!(
                            "({name}) Invalid value '{}' for sync group notify_priority_changes specified",
                            n.arg(0).unwrap_or("")
                        );
                        self.bad(n, &m);
                    }
                },
                _ => self.other(BlockKind::SyncGroup, n),
            }
        }
        if left {
            let end = node.block.as_ref().and_then(|b| b.close.clone()).unwrap_or_else(|| node.pos().clone());
            self.diags.push(Diag::warning(&end, "Unknown keyword '}'"));
        }
        Some(g)
    }

    /// Cross-references: sync group members must be instances, each in at
    /// most one group.
    pub(in crate::build) fn check_references(&mut self, c: &mut Config) {
        let mark = self.diags.len();
        self.check_sync_groups(c);
        if self.vrrp_min_cfg_failed {
            self.diags.truncate(mark);
        }
        let mark = self.diags.len();
        // A VRID conflict fails the load before the sync groups' tracking.
        if !self.check_vrids(c) {
            self.sync_group_tracking(c);
        }
        if self.vrrp_complete_failed {
            self.diags.truncate(mark);
        }
        // keepalived -t stops before it resolves lvs_sync_daemon's instance
        // and drops unused scripts (vrrp_complete_init returns early in a
        // config test), so neither is a verdict here.
    }

    pub(super) fn check_sync_groups(&mut self, c: &mut Config) {
        let mut seen: Vec<String> = Vec::new();
        for g in &mut c.sync_groups {
            let had_members = !g.members.is_empty();
            let mut kept = Vec::new();
            // keepalived's group state as it adds members: an address owner
            // first, then a member that starts as backup, cannot work.
            let mut owner_so_far: Option<bool> = None;
            for (m, pos) in g.members.drain(..) {
                let Some(inst) = c.instances.iter().find(|i| i.name == m) else {
                    self.diags.push(Diag::warning(
                        &pos,
                        format!("Virtual router {m} specified in sync group {} doesn't exist - ignoring", g.name),
                    ));
                    continue;
                };
                if seen.contains(&m) {
                    self.diags.push(Diag::warning(
                        &pos,
                        format!("Virtual router {m} cannot exist in more than one sync group; ignoring {}", g.name),
                    ));
                    continue;
                }
                let owner = inst.priority == PRIO_OWNER && inst.state == Some(InitialState::Master);
                if owner_so_far == Some(true) && !owner {
                    self.diags.push(Diag::warning(
                        &g.pos,
                        format!(
                            "Sync group {} has some member(s) as address owner and some not as address owner. This won't work.",
                            g.name
                        ),
                    ));
                }
                if owner_so_far != Some(false) {
                    owner_so_far = Some(owner);
                }
                seen.push(m.clone());
                kept.push((m, pos));
            }
            g.members = kept;
            if !had_members {
                self.diags
                    .push(Diag::warning(&g.pos, format!("Sync group {} has no virtual router(s). removing", g.name)));
            } else if g.members.is_empty() {
                self.diags.push(Diag::warning(
                    &g.pos,
                    format!("Sync group {}, no matching virtual router found in group declaration - removing", g.name),
                ));
            } else if g.members.len() == 1 {
                self.diags.push(Diag::warning(
                    &g.pos,
                    format!("Sync group {} has only 1 virtual router(s) - this probably isn't what you want", g.name),
                ));
            }
        }
        c.sync_groups.retain(|g| !g.members.is_empty());
    }

    /// keepalived's sync_group_tracking_init, after every instance is
    /// complete: a sync group's tracking added to its members.
    pub(super) fn sync_group_tracking(&mut self, c: &mut Config) {
        for g in &mut c.sync_groups {
            for inst in c.instances.iter().filter(|i| g.members.iter().any(|(m, _)| m == &i.name)) {
                let own = inst.interface.as_ref().filter(|_| !inst.dont_track_primary).map(|x| x.0.as_str());
                for t in &g.track_interfaces {
                    if own == Some(t.name.as_str()) || inst.track_interfaces.iter().any(|x| x.name == t.name) {
                        let m = format!(
                            "({}) track_interface {} is configured on VRRP instance and sync group. Remove vrrp instance or sync group config",
                            inst.name, t.name
                        );
                        self.diags.push(Diag::warning(&t.pos, m));
                    }
                }
            }
            let has_owner =
                g.members.iter().any(|(m, _)| c.instances.iter().any(|i| &i.name == m && i.priority == PRIO_OWNER));
            if has_owner {
                for t in g.track_scripts.iter_mut().filter(|t| t.weight != 0) {
                    let m = format!(
                        "({}) Cannot have weighted track script '{}' with member having priority {PRIO_OWNER} - clearing weight",
                        g.name, t.name
                    );
                    self.diags.push(Diag::warning(&t.pos, m));
                    t.weight = 0;
                }
                for t in g.track_interfaces.iter_mut().filter(|t| t.weight != 0) {
                    let m = format!(
                        "({}) Cannot have weighted track interface '{}' with member having priority {PRIO_OWNER} - clearing weight",
                        g.name, t.name
                    );
                    self.diags.push(Diag::warning(&t.pos, m));
                    t.weight = 0;
                }
            }
        }
    }

    /// keepalived's check_vrid_conflicts: multicast instances on one link
    /// with one group, and unicast instances with one source that share a
    /// peer, cannot use one VRID.
    pub(super) fn check_vrids(&mut self, c: &Config) -> bool {
        let mut conflict = false;
        let v6 = |i: &VrrpInstance| {
            i.native_ipv6
                || i.vips.first().map(|a| a.addr.is_ipv6()).or(i.unicast_peers.first().map(|p| p.addr.is_ipv6()))
                    == Some(true)
        };
        let ifname =
            |i: &VrrpInstance| i.interface.as_ref().map(|x| x.0.clone()).or(c.global.default_interface.clone());
        let group = |i: &VrrpInstance| {
            i.mcast_dst_ip.unwrap_or(if v6(i) {
                IpAddr::V6(c.global.mcast_group6)
            } else {
                IpAddr::V4(c.global.mcast_group4)
            })
        };
        for (n, a) in c.instances.iter().enumerate() {
            for b in &c.instances[n + 1..] {
                let unicast = !a.unicast_peers.is_empty();
                if v6(a) != v6(b) || a.vrid != b.vrid || unicast == b.unicast_peers.is_empty() {
                    continue;
                }
                if unicast {
                    let (ia, ib) = (a.interface.as_ref().map(|x| &x.0), b.interface.as_ref().map(|x| &x.0));
                    if ia.is_some() && ib.is_some() && ia != ib {
                        continue;
                    }
                    let (sa, sb) = (a.unicast_src_ip.or(a.mcast_src_ip), b.unicast_src_ip.or(b.mcast_src_ip));
                    let same_source = match (sa, sb) {
                        (Some(x), Some(y)) => x == y,
                        (None, None) => ia.is_some() && ia == ib,
                        _ => false,
                    };
                    let shared_peer = a.unicast_peers.iter().any(|p| b.unicast_peers.iter().any(|q| q.addr == p.addr));
                    if same_source && shared_peer {
                        let m = format!("({}) duplicate VRID conflict with {} VRID {}", a.name, b.name, a.vrid);
                        self.diags.push(Diag::error(&b.pos, m));
                        conflict = true;
                    }
                    continue;
                }
                let (Some(ia), Some(ib)) = (ifname(a), ifname(b)) else { continue };
                if ia != ib || group(a) != group(b) {
                    continue;
                }
                let family = if v6(a) { 6 } else { 4 };
                self.diags.push(
                    Diag::warning(
                        &b.pos,
                        format!(
                            "{} and {} both use VRID {} with IPv{family} on interface {ia}",
                            a.name, b.name, a.vrid
                        ),
                    )
                    .with_hint("two routers with one VRID on one link fight over the same virtual MAC"),
                );
                conflict = true;
            }
        }
        conflict
    }
}
