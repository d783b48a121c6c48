//! Passthrough directions carried in the kernel (see `engine/offload.rs` and
//! `runtime/kernel_relay.rs`): the driver turns the engine's [`Offload`]s
//! into routes of the relay program, keyed by the receiving leg's port, once
//! both legs' peers are known (the receiving one latched, so the route takes
//! packets from that address only), neither leg is SRTP, and both are IPv4.
//! A leg that latches onto a new address, or is given one, has its routes
//! set again. Every second, and when a route is taken away, what it forwarded
//! goes to the engine, so the legs' counts, media timeouts and streams follow.

use std::net::{IpAddr, SocketAddr, SocketAddrV4};

use super::{Driver, RuntimeMetrics};
use crate::engine::{Offload, Relayed};
use crate::ids::LegId;
use crate::runtime::kernel_relay::{path_to, Route, RouteCounts};
use crate::runtime::leg_socket::SocketSrtp;
use crate::runtime::now;

/// How often routes report what they forwarded (well inside a media timeout).
pub(super) const OFFLOAD_REPORTS: std::time::Duration = std::time::Duration::from_secs(1);

/// Link-layer, IPv4, UDP and RTP headers of a routed packet, as the
/// relay's byte counts include them.
const HEADERS: u64 = 14 + 20 + 8 + 12;

/// A direction the engine offered, and its route while the kernel carries it.
pub(super) struct Wanted {
    offload: Offload,
    installed: Option<Installed>,
}

struct Installed {
    /// The offer the route was made from (its counts are reported against it,
    /// even once a newer offer replaces it).
    offload: Offload,
    at: SocketAddrV4,
    route: Route,
    /// What the route had forwarded when last reported.
    reported: RouteCounts,
}

impl Driver {
    /// The engine offered a direction (or new offsets for one).
    pub(super) fn offload(&mut self, offload: Offload) {
        self.offloads.entry(offload.from).or_insert(Wanted { offload, installed: None }).offload = offload;
        self.route_offload(offload.from);
    }

    /// The engine ended `from`'s direction: take its route away.
    pub(super) fn offload_ended(&mut self, from: LegId) {
        self.unroute(from);
        self.offloads.remove(&from);
    }

    /// `leg`'s peer address changed (latched, or given): route its directions again.
    pub(super) fn reroute_offloads(&mut self, leg: LegId) {
        for from in self.directions_of(leg) {
            self.route_offload(from);
        }
    }

    /// `leg` is gone: its directions go, their last counts to whichever leg is left.
    pub(super) fn drop_offloads(&mut self, leg: LegId) {
        for from in self.directions_of(leg) {
            self.offload_ended(from);
        }
    }

    /// The offered directions into or out of `leg`, by receiving leg.
    fn directions_of(&self, leg: LegId) -> Vec<LegId> {
        let touches = |w: &&Wanted| w.offload.from == leg || w.offload.to == leg;
        self.offloads.values().filter(touches).map(|w| w.offload.from).collect()
    }

    /// Report what every route forwarded since the last report.
    pub(super) fn report_offloads(&mut self) {
        let routed: Vec<LegId> =
            self.offloads.values().filter(|w| w.installed.is_some()).map(|w| w.offload.from).collect();
        for from in routed {
            let counts = self.on_route(|relay, at| relay.counts(at), from);
            if let Some(counts) = counts {
                self.report(from, counts);
            }
        }
    }

    /// Install, replace or remove `from`'s route as the legs' sockets now allow.
    fn route_offload(&mut self, from: LegId) {
        let Some(wanted) = self.offloads.get(&from) else { return };
        let offload = wanted.offload;
        let target = self.route_for(&offload);
        if target.is_some() && target == wanted.installed.as_ref().map(|i| (i.at, i.route)) {
            return;
        }
        self.unroute(from);
        let Some((at, route)) = target else { return };
        let Some(relay) = &self.shared.kernel_relay else { return };
        let result = relay.lock().unwrap_or_else(std::sync::PoisonError::into_inner).route(at, &route);
        match result {
            Ok(()) => {
                if let Some(wanted) = self.offloads.get_mut(&from) {
                    wanted.installed =
                        Some(Installed { offload, at, route, reported: RouteCounts::default() });
                }
                RuntimeMetrics::add(&self.shared.metrics.offload_routes, 1);
            }
            Err(e) => tracing::warn!(leg = %from, error = %e, "the kernel relay refused a route"),
        }
    }

    /// Take `from`'s route away, reporting what it forwarded last.
    fn unroute(&mut self, from: LegId) {
        let counts = self.on_route(|relay, at| relay.remove(at), from);
        if let Some(counts) = counts {
            self.report(from, counts);
        }
        if let Some(wanted) = self.offloads.get_mut(&from) {
            wanted.installed = None;
        }
    }

    /// Run `f` on the relay with `from`'s routed port, if it is routed.
    fn on_route<T>(
        &mut self,
        f: impl FnOnce(&mut crate::runtime::kernel_relay::KernelRelay, SocketAddrV4) -> Result<T, String>,
        from: LegId,
    ) -> Option<T> {
        let at = self.offloads.get(&from)?.installed.as_ref()?.at;
        let relay = self.shared.kernel_relay.as_ref()?;
        let result = f(&mut relay.lock().unwrap_or_else(std::sync::PoisonError::into_inner), at);
        result.map_err(|e| tracing::debug!(leg = %from, error = %e, "kernel relay route")).ok()
    }

    /// Give the engine what `from`'s route forwarded since the last report.
    fn report(&mut self, from: LegId, counts: RouteCounts) {
        let Some(installed) = self.offloads.get_mut(&from).and_then(|w| w.installed.as_mut()) else { return };
        let packets = counts.packets.saturating_sub(installed.reported.packets);
        let bytes = counts.bytes.saturating_sub(installed.reported.bytes);
        installed.reported = counts;
        if packets == 0 {
            return;
        }
        let offload = installed.offload;
        RuntimeMetrics::add(&self.shared.metrics.packets_offloaded, packets);
        let relayed = Relayed {
            packets,
            bytes: bytes.saturating_sub(packets * HEADERS),
            last_sent: counts.last_sent,
            jitter_q4: counts.jitter_q4,
        };
        self.engine.handle_offloaded(now(), &offload, relayed);
    }

    /// Where the relay takes `offload`'s packets and how it sends them on, if
    /// it can: plain RTP over IPv4 both ways, the receiving peer latched and
    /// the sending leg's peer known.
    fn route_for(&self, offload: &Offload) -> Option<(SocketAddrV4, Route)> {
        let (receiving, sending) = (self.sockets.get(&offload.from)?, self.sockets.get(&offload.to)?);
        let plain = |srtp: &SocketSrtp| matches!(srtp, SocketSrtp::Off);
        if !plain(&receiving.srtp) || !plain(&sending.srtp) || !receiving.latched {
            return None;
        }
        let (SocketAddr::V4(peer), SocketAddr::V4(far)) = (receiving.remote?, sending.remote?) else {
            return None;
        };
        let IpAddr::V4(bind) = self.shared.config.bind_ip else { return None };
        let (source, out_ifindex) = path_to(bind, *far.ip())?;
        let route = Route {
            from: peer,
            via: SocketAddrV4::new(source, sending.port),
            to: far,
            in_pt: offload.in_pt,
            out_pt: offload.out_pt,
            in_ssrc: offload.in_ssrc,
            out_ssrc: offload.out_ssrc,
            seq_offset: offload.seq_offset,
            ts_offset: offload.ts_offset,
            out_ifindex,
            clock_rate: offload.clock_rate,
        };
        Some((SocketAddrV4::new(bind, receiving.port), route))
    }
}
