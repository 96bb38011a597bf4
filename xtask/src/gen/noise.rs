//! Generator noise: flows that are not TLS — plain HTTP image downloads from an intranet server,
//! DNS lookups and RTP-like UDP. Must never carry anything that looks like PHI or credentials.
use std::io::{self, Write};

use super::conn::{Act, Conn};
use super::pcap::{Endpoints, Ips, PcapWriter};
use super::rng::{Pool, Rng};
use super::world::{Client, Server};

pub const HTTP_SERVER: [u8; 4] = [10, 30, 0, 80];
const DNS_SERVER: [u8; 4] = [10, 0, 0, 53];
const GATEWAY_MAC: [u8; 6] = [0x00, 0x1b, 0x21, 0x3a, 0x4f, 0x01];

/// Fills `conn` with a plain HTTP/1.1 GET of a WSUS update file and its response, then FIN/ACK.
pub fn http(conn: &mut Conn, rng: &mut Rng) -> io::Result<()> {
    let body = rng.log_uniform(2_000, 400_000);
    let req = &mut conn.hs[0];
    write!(
        req,
        "GET /Content/{:02X}/{:016X}{:016X}{:08X}.cab HTTP/1.1\r\nHost: wsus-{}.hospital.example\r\n\
         User-Agent: Windows-Update-Agent/10.0.10011.16384 Client-Protocol/2.71\r\nAccept: */*\r\n\
         Connection: close\r\n\r\n",
        rng.below(256),
        rng.next(),
        rng.next(),
        rng.next() as u32,
        1 + rng.below(2)
    )?;
    let req_len = req.len() as u32;
    let resp = &mut conn.hs[1];
    write!(
        resp,
        "HTTP/1.1 200 OK\r\nServer: Microsoft-IIS/10.0\r\nDate: Mon, 02 Jun 2025 08:00:00 GMT\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {body}\r\nConnection: close\r\n\r\n"
    )?;
    let resp_len = resp.len() as u32;
    conn.rec[1].set(true, 0, 0, 0);
    conn.script.extend_from_slice(&[
        Act::Syn,
        Act::SynAck,
        Act::Ack,
        Act::Send { side: 0, len: req_len, cuts: [0, 0] },
        Act::Send { side: 1, len: resp_len, cuts: [0, 0] },
        Act::Bulk { side: 1, bytes: body },
        Act::Fin { side: 1 },
        Act::Fin { side: 0 },
        Act::AckFrom { side: 1 },
    ]);
    Ok(())
}

fn udp_endpoints(c: &Client, server: [u8; 4], ports: [u16; 2]) -> Endpoints {
    Endpoints {
        vlan: c.vlan,
        mac: [c.mac, GATEWAY_MAC],
        ips: Ips::V4 { client: c.v4, server },
        port: ports,
        ttl: [c.profile.ttl, 63],
    }
}

/// One UDP exchange: a DNS query + answer for a server name, or a burst of RTP-like packets.
pub fn udp<W: Write>(
    w: &mut PcapWriter<W>,
    now: &mut u64,
    rng: &mut Rng,
    pool: &Pool,
    c: &Client,
    s: &Server,
    buf: &mut Vec<u8>,
) -> io::Result<u64> {
    let sport = 49_152 + rng.below(16_000) as u16;
    if rng.chance(500) {
        let ep = udp_endpoints(c, DNS_SERVER, [sport, 53]);
        let id = rng.next() as u16;
        buf.clear();
        buf.extend_from_slice(&id.to_be_bytes());
        buf.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        for label in s.name.split('.') {
            buf.push(label.len() as u8);
            buf.extend_from_slice(label.as_bytes());
        }
        buf.extend_from_slice(&[0, 0, 1, 0, 1]); // root, type A, class IN
        *now += 1 + rng.below(20);
        w.udp(*now, &ep, 0, id, buf)?;
        buf[2] = 0x81;
        buf[3] = 0x80;
        buf[7] = 1; // ANCOUNT
        buf.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x01, 0x2c, 0, 4]);
        buf.extend_from_slice(&s.v4);
        *now += 200 + rng.below(800);
        w.udp(*now, &ep, 1, id.wrapping_add(7), buf)?;
        return Ok(2);
    }
    // RTP (nurse-call / intercom audio): 12-byte header + 160 bytes G.711 payload.
    let ep = udp_endpoints(c, [10, 40, 0, 5], [16_384 + 2 * rng.below(100) as u16, 5004]);
    let (mut seq, mut ts, ssrc) = (rng.next() as u16, rng.next() as u32, rng.next() as u32);
    let n = 3 + rng.below(8);
    for _ in 0..n {
        buf.clear();
        buf.extend_from_slice(&[0x80, 0x00]);
        buf.extend_from_slice(&seq.to_be_bytes());
        buf.extend_from_slice(&ts.to_be_bytes());
        buf.extend_from_slice(&ssrc.to_be_bytes());
        buf.extend_from_slice(pool.bytes(rng, 160));
        *now += 1 + rng.below(20);
        w.udp(*now, &ep, 0, seq, buf)?;
        seq = seq.wrapping_add(1);
        ts = ts.wrapping_add(160);
    }
    Ok(n)
}
