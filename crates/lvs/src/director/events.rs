//! What changed in the tables, reported as quinn-proto reports what a
//! connection did: the core queues events as it changes, and the shells
//! that follow the tables (the traffic filter, the next-hop watch, the
//! checkers, later the XDP connection map) drain them with
//! [`Director::poll_event`] and apply each one, instead of walking the
//! whole table after every change.
//!
//! Table events (services, real servers, local addresses) are always
//! queued: they come from control requests, so a shell that never polls
//! loses nothing but a little memory. Connection events come from the
//! packet path and are queued only once a shell asks for them
//! ([`Director::follow_conns`]).

use super::Director;
use crate::conn::{ConnKey, ConnState, OutKey};
use crate::types::{DestConfig, ServiceKey};
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    ServiceAdded(ServiceKey),
    /// Its scheduler, flags, timeout or netmask changed.
    ServiceChanged(ServiceKey),
    /// Reported after its real servers' and local addresses' removals.
    ServiceRemoved(ServiceKey),
    /// A real server entered the service's list (new, or revived from the
    /// trash).
    DestAdded {
        service: ServiceKey,
        dest: DestConfig,
    },
    DestChanged {
        service: ServiceKey,
        old: DestConfig,
        new: DestConfig,
    },
    /// A real server left the service's list (its connections may live on
    /// in the trash until they expire).
    DestRemoved {
        service: ServiceKey,
        dest: DestConfig,
    },
    LaddrAdded {
        service: ServiceKey,
        laddr: IpAddr,
    },
    LaddrRemoved {
        service: ServiceKey,
        laddr: IpAddr,
    },
    ConnAdded(ConnKey),
    /// Its TCP state moved.
    ConnChanged {
        key: ConnKey,
        from: ConnState,
        to: ConnState,
    },
    /// With the key its replies came back with (NAT, FULLNAT), and the
    /// state it was in.
    ConnRemoved {
        key: ConnKey,
        out: Option<OutKey>,
        state: ConnState,
    },
}

impl Director {
    /// The oldest change not yet taken, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether connection events are queued as well (off by default: they
    /// cost a queue push per new connection, state change and expiry).
    pub fn follow_conns(&mut self, on: bool) {
        self.conn_events = on;
        if !on {
            self.events
                .retain(|e| !matches!(e, Event::ConnAdded(_) | Event::ConnChanged { .. } | Event::ConnRemoved { .. }));
        }
    }

    pub(super) fn emit(&mut self, e: Event) {
        self.events.push_back(e);
    }

    pub(super) fn emit_conn(&mut self, e: impl FnOnce() -> Event) {
        if self.conn_events {
            self.events.push_back(e());
        }
    }
}
