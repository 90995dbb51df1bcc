//! Tracked interfaces and scripts, and notify scripts.

use super::*;

impl Builder {
    pub(in crate::build) fn track_interface(
        &mut self,
        n: &Node,
        owner: &str,
        existing: &[TrackInterface],
    ) -> Option<TrackInterface> {
        self.no_block(n);
        let name = n.keyword().to_string();
        if existing.iter().any(|t| t.name == name) {
            self.bad(n, &format!("({owner}) duplicate track_interface {name} - ignoring"));
            return None;
        }
        let (weight, reverse) = self.track_weight(n, owner, &name, "track_interface", 0, false)?;
        Some(TrackInterface { pos: n.pos().clone(), name, weight, reverse })
    }

    pub(in crate::build) fn track_script(
        &mut self,
        n: &Node,
        owner: &str,
        scripts: &[VrrpScript],
        existing: &[TrackScript],
    ) -> Option<TrackScript> {
        self.no_block(n);
        let name = n.keyword().to_string();
        let Some(script) = scripts.iter().find(|s| s.name == name) else {
            self.bad(n, &format!("({owner}) track script {name} not found, ignoring..."));
            return None;
        };
        if existing.iter().any(|t| t.name == name) {
            self.bad(n, &format!("({owner}) duplicate track_script {name} - ignoring"));
            return None;
        }
        let (weight, reverse) =
            self.track_weight(n, owner, &name, "track_script", script.weight, script.weight_reverse)?;
        Some(TrackScript { pos: n.pos().clone(), name, weight, reverse })
    }

    /// `NAME [weight N [reverse|noreverse]]`.
    pub(super) fn track_weight(
        &mut self,
        n: &Node,
        owner: &str,
        name: &str,
        what: &str,
        dflt: i32,
        rev: bool,
    ) -> Option<(i32, bool)> {
        let mut weight = dflt;
        let mut reverse = rev;
        // keepalived's words differ between the two (its typo included).
        let script = what == "track_script";
        if let Some(opt) = n.arg(0) {
            if opt != "weight" {
                let m = if script {
                    format!("({owner}) unknown track script option {opt} - ignoring")
                } else {
                    format!("({owner}) unknown track_interface {name} option {opt} - ignoring")
                };
                self.bad(n, &m);
                return None;
            }
            if n.arg(1).is_none() {
                let which = if script { "track script" } else { "track_interface" };
                self.bad(n, &format!("({owner}) weight without value specified for {which} {name} - ignoring"));
                return None;
            }
            match self.int(n, 1, -254, 254) {
                Some(w) if w.abs() == 254 => {
                    self.bad(n, &format!("({owner}) weight for {name} cannot be +/-254. Setting to +/-253"));
                    weight = if w < 0 { -253 } else { 253 };
                }
                Some(w) => weight = w as i32,
                None if script => self.bad(
                    n,
                    &format!(
                        "({owner}) track script {name}: weight must be between [-253..253] inclusive, ignoring..."
                    ),
                ),
                None => {
                    let m = format!(
                        "({owner}) weight {} for {name} must be between [-253..253] inclusive. Ignoring...",
                        n.arg(1).unwrap_or("")
                    );
                    self.bad(n, &m);
                    weight = 0;
                }
            }
            match n.arg(2) {
                Some("reverse") => reverse = true,
                Some("noreverse") if script => reverse = false,
                Some(o) if script => {
                    self.bad(n, &format!("({owner}) unknown track_script {name} weight option {o} - ignoring"))
                }
                Some(o) => {
                    self.bad(n, &format!("({owner}) unknown track_interace {name} weight option {o} - ignoring"))
                }
                None => {}
            }
        }
        Some((weight, reverse))
    }

    pub(in crate::build) fn notify(&mut self, n: &Node) -> Option<NotifyScript> {
        let (command, user) = self.script(n)?;
        Some(NotifyScript { pos: n.pos().clone(), command, user })
    }
}
