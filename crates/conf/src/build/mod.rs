//! Block tree to typed model. One builder per block; what none of them
//! takes goes to [`Builder::other`], which knows from the schema whether
//! the keyword is one rlvs ignores on purpose, one that belongs in another
//! block, or unknown.

mod global;
mod lvs;
mod values;
mod vrrp;

pub use values::{parse_decimal_us, parse_ip, parse_prefixed, split_command};

use crate::diag::Diag;
use crate::model::{Config, GlobalDefs};
use crate::schema::{self, BlockKind};
use crate::tree::Node;

/// The longest interface name Linux takes (IFNAMSIZ less the NUL).
pub(super) const IFNAME_MAX: usize = 15;

pub(crate) struct Builder {
    pub diags: Vec<Diag>,
    /// VRRP instances dropped for an error keepalived's VRRP process
    /// stops on (vrrp_complete_instance failing).
    pub dropped_instances: Vec<String>,
    /// The interface a (deprecated) instance-level
    /// lvs_sync_daemon_interface named, which keepalived keeps globally.
    pub instance_syncd_interface: Option<String>,
    /// keepalived's vrrp_complete_init failed on an instance: it checks
    /// nothing after that (sync group weights, VRID conflicts).
    pub vrrp_complete_failed: bool,
    /// Its first check (vrid and interface of every instance) failed: it
    /// says nothing of sync groups either.
    pub vrrp_min_cfg_failed: bool,
}

/// The configuration, what was said about it, and the VRRP instances
/// dropped for errors.
pub fn build(nodes: &[Node]) -> (Config, Vec<Diag>, Vec<String>) {
    let mut b = Builder {
        diags: Vec::new(),
        dropped_instances: Vec::new(),
        instance_syncd_interface: None,
        vrrp_complete_failed: false,
        vrrp_min_cfg_failed: false,
    };
    let mut config = Config {
        global: GlobalDefs::default(),
        scripts: Vec::new(),
        sync_groups: Vec::new(),
        instances: Vec::new(),
        vs_groups: Vec::new(),
        virtual_servers: Vec::new(),
        ssl: None,
        laddr_groups: Vec::new(),
        track_files: Vec::new(),
    };
    // keepalived reads global_defs and vrrp_scripts before the instances
    // that refer to them, whatever their order in the file.
    for n in nodes {
        match n.keyword() {
            "global_defs" => {
                if let Some(children) = b.block(n) {
                    b.global_defs(children, &mut config.global);
                }
            }
            "vrrp_script" => {
                if let Some(s) = b.vrrp_script(n) {
                    config.scripts.push(s);
                }
            }
            _ => {}
        }
    }
    let mut pending: Vec<vrrp::PendingInstance> = Vec::new();
    for n in nodes {
        match n.keyword() {
            "global_defs" | "vrrp_script" => {}
            "vrrp_instance" if n.arg(0).is_some_and(|name| pending.iter().any(|p| p.v.name == name)) => {
                b.bad(n, &format!("vrrp instance {} already defined", n.arg(0).unwrap_or("")));
            }
            "vrrp_instance" => {
                if let Some(i) = b.vrrp_instance(n, &config.global, &config.scripts) {
                    pending.push(i);
                }
            }
            "vrrp_sync_group" if n.arg(0).is_some_and(|name| config.sync_groups.iter().any(|g| g.name == name)) => {
                b.bad(n, &format!("vrrp sync group {} already defined", n.arg(0).unwrap_or("")));
            }
            "vrrp_sync_group" => {
                if let Some(g) = b.sync_group(n, &config.scripts) {
                    config.sync_groups.push(g);
                }
            }
            "virtual_server_group" => {
                if let Some(g) = b.vs_group(n) {
                    config.vs_groups.push(g);
                }
            }
            "virtual_server" => {
                if let Some(v) = b.virtual_server(n) {
                    config.virtual_servers.push(v);
                }
            }
            "SSL" => {
                if config.ssl.is_some() {
                    b.bad(n, "SSL context already specified - replacing");
                }
                if let Some(children) = b.block(n) {
                    config.ssl = Some(b.ssl(children));
                }
            }
            "track_file" | "vrrp_track_file" => {
                if let Some(t) = b.track_file(n) {
                    config.track_files.push(t);
                }
            }
            "local_address_group" => {
                if let Some(g) = b.laddr_group(n) {
                    config.laddr_groups.push(g);
                }
            }
            _ => b.other(BlockKind::Root, n),
        }
    }
    config.instances = b.complete_instances(&config.global, pending);
    b.check_references(&mut config);
    b.check_fwmark_ports(&mut config);
    (config, b.diags, b.dropped_instances)
}

impl Builder {
    /// The children of a block keyword, or a warning when the keyword has
    /// no `{ ... }` after it.
    pub(super) fn block<'n>(&mut self, node: &'n Node) -> Option<&'n [Node]> {
        match &node.block {
            Some(b) => Some(&b.children),
            None => {
                self.diags.push(
                    Diag::warning(node.pos(), "Missing '{' at beginning of configuration block")
                        .with_hint(format!("'{}' takes a {{ ... }} block", node.keyword())),
                );
                None
            }
        }
    }

    /// A block of values (addresses, peers, tracked names): keepalived
    /// reads it even with words between the keyword and its brace, and says
    /// so. `skip` words (a group's name) are the keyword's own.
    pub(super) fn value_block<'n>(&mut self, node: &'n Node, skip: usize) -> Option<&'n [Node]> {
        if let Some(extra) = node.arg(skip) {
            let m = format!("Block {} has extra parameters {extra} ...", node.keyword());
            self.diags.push(Diag::warning(node.pos(), m));
        }
        self.block(node)
    }

    /// A keyword that takes no block was given one: its contents are not
    /// read (keepalived would read them as if they were outside it).
    pub(super) fn no_block(&mut self, node: &Node) {
        if let Some(b) = &node.block {
            self.diags.push(
                Diag::warning(&b.open, "Unexpected '{' - ignoring")
                    .with_hint(format!("'{}' takes no block; what is inside it is skipped", node.keyword())),
            );
        }
    }

    /// A keyword the block's builder does not take.
    pub(super) fn other(&mut self, kind: BlockKind, node: &Node) {
        let kw = node.keyword();
        if node.words.is_empty() {
            // An anonymous block: the tree already warned.
            return;
        }
        // The block loops warn about a block on any keyword that takes
        // none before dispatching; for a keyword they do not take, the
        // warning below says it instead.
        if let Some(b) = &node.block {
            if let Some(i) = self
                .diags
                .iter()
                .rposition(|d| d.pos.as_ref() == Some(&b.open) && d.message.starts_with("Unexpected '{'"))
            {
                self.diags.remove(i);
            }
        }
        let table = schema::table(kind);
        if let Some(reason) = table.ignored_reason(kw) {
            self.diags.push(Diag::note(node.pos(), format!("'{kw}' has no effect in rlvs: {reason}")));
            return;
        }
        let mut d = Diag::warning(node.pos(), format!("Unknown keyword '{kw}'"));
        let elsewhere = schema::blocks_knowing(kw, kind);
        if kw == "nb_get_retry" {
            d = d.with_hint(format!(
                "nb_get_retry has no effect here ({} level); did you mean 'retry' inside HTTP_GET?",
                kind.describe()
            ));
        } else if !elsewhere.is_empty() {
            let places: Vec<&str> = elsewhere.iter().map(|b| b.describe()).collect();
            d = d.with_hint(format!(
                "'{kw}' has no effect here ({} level); it belongs in {}",
                kind.describe(),
                places.join(" or ")
            ));
        } else if let Some(s) = schema::suggest(kw, kind) {
            d = d.with_hint(format!("did you mean '{s}'?"));
        }
        if node.block.is_some() {
            let hint = d.hint.take().unwrap_or_else(|| "unknown block".to_string());
            d = d.with_hint(format!("{hint}; its {{ ... }} block is skipped whole"));
        }
        self.diags.push(d);
    }
}

#[cfg(test)]
mod tests;
