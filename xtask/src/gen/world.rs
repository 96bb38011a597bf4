//! Generator world: the hospital's hosts (client and server instances with addresses, VLANs,
//! names and certificates) and how a connection's endpoints are chosen.
//! Must never use real-world address space: 10/8, fd00::/8 and *.hospital.example only.
use super::certs::Chain;
use super::pcap::{Endpoints, Ips};
use super::profiles::{ClientProfile, ServerProfile, CLIENTS, MIX, SERVERS};
use super::rng::Rng;

pub struct Client {
    pub profile: &'static ClientProfile,
    pub v4: [u8; 4],
    pub v6: Option<[u8; 16]>,
    pub mac: [u8; 6],
    pub vlan: u16,
}

pub struct Server {
    pub profile: &'static ServerProfile,
    pub name: String,
    pub v4: [u8; 4],
    pub v6: Option<[u8; 16]>,
    pub port: u16,
    pub chain: &'static Chain,
    /// Sends renegotiation_info (RFC 5746).
    pub reneg: bool,
    /// Accepts DEFLATE when offered.
    pub deflate: bool,
    /// Packs its handshake flight into one record (else one record per message).
    pub pack: bool,
    /// Suite preference (the profile's, with one suite promoted on odd instances).
    pub prefs: Vec<u16>,
    /// Picks by the client's order rather than its own.
    pub client_order: bool,
}

pub struct World {
    pub clients: Vec<Vec<Client>>,
    pub servers: Vec<Vec<Server>>,
    weights: Vec<u32>,
}

const GATEWAY_MAC: [u8; 6] = [0x00, 0x1b, 0x21, 0x3a, 0x4f, 0x01];
const CLIENTS_PER_PROFILE: usize = 120;

fn v6(net: u16, sub: u16, host: u16) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[0] = 0xfd;
    a[2..4].copy_from_slice(&net.to_be_bytes());
    a[4..6].copy_from_slice(&sub.to_be_bytes());
    a[14..16].copy_from_slice(&host.to_be_bytes());
    a
}

impl World {
    pub fn new(rng: &mut Rng) -> Self {
        let clients = CLIENTS
            .iter()
            .enumerate()
            .map(|(pi, &profile)| {
                (0..CLIENTS_PER_PROFILE)
                    .map(|k| {
                        let device = profile.max() <= 0x0301;
                        let vlan = match (k % 5, device) {
                            (0, true) => 110, // clinical device VLAN, seen tagged on the trunk
                            (0, false) => 20,
                            _ => 0,
                        };
                        Client {
                            profile,
                            v4: [10, 10 + pi as u8, (k / 200) as u8, 10 + (k % 200) as u8],
                            v6: (profile.versions.len() > 1).then(|| v6(0x10, pi as u16, 0x100 + k as u16)),
                            mac: [0x02, 0x50, 0x56, pi as u8, (k >> 8) as u8, k as u8],
                            vlan,
                        }
                    })
                    .collect()
            })
            .collect();
        let servers = SERVERS
            .iter()
            .enumerate()
            .map(|(pi, &profile)| {
                (0..profile.instances)
                    .map(|k| {
                        let role = profile.roles[k % profile.roles.len()];
                        let mut prefs = profile.prefs.to_vec();
                        if k % 2 == 1 {
                            // Every other instance prefers a different suite of the profile's list.
                            let promoted = prefs.remove((k / 2) % prefs.len());
                            prefs.insert(0, promoted);
                        }
                        Server {
                            profile,
                            name: format!("{role}-{}.hospital.example", 1 + k / profile.roles.len()),
                            v4: [10, 20 + pi as u8, 0, 10 + k as u8],
                            v6: (profile.max >= 0x0304).then(|| v6(0x20, pi as u16, 0x10 + k as u16)),
                            port: *rng.pick(profile.ports),
                            chain: profile.chains[rng.usize(profile.chains.len())],
                            reneg: rng.chance(profile.reneg_permille),
                            deflate: rng.chance(profile.deflate_permille),
                            pack: rng.chance(400),
                            prefs,
                            client_order: rng.chance(300),
                        }
                    })
                    .collect()
            })
            .collect();
        World { clients, servers, weights: MIX.iter().map(|m| m.2).collect() }
    }

    /// A client and server that talk to each other, according to the traffic mix.
    pub fn pick(&self, rng: &mut Rng) -> (&Client, &Server) {
        let (ci, si, _) = MIX[rng.weighted(&self.weights)];
        (rng.pick(&self.clients[ci]), rng.pick(&self.servers[si]))
    }
}

/// Endpoints for a new connection from `c`:`cport` to (`sv4` | `sv6`):`port`, and its MSS.
pub fn endpoints(
    c: &Client,
    sv4: [u8; 4],
    sv6: Option<[u8; 16]>,
    port: u16,
    cport: u16,
    rng: &mut Rng,
) -> (Endpoints, usize) {
    let ips = match (c.v6, sv6) {
        (Some(client), Some(server)) if rng.chance(350) => Ips::V6 { client, server },
        _ => Ips::V4 { client: c.v4, server: sv4 },
    };
    let mss = if matches!(ips, Ips::V6 { .. }) { 1428 } else { 1448 };
    let ep = Endpoints { vlan: c.vlan, mac: [c.mac, GATEWAY_MAC], ips, port: [cport, port], ttl: [c.profile.ttl, 63] };
    (ep, mss)
}
