//! Probe, scope: which servers the prober may contact — an explicit allowlist of networks and
//! ports (`CIDR[:PORTS]`), and a deny list that wins over it. Pure data, no I/O.
//! Must never permit anything when the allowlist is empty (the prober then refuses to start),
//! nor an address or port outside an allow rule, nor anything a deny rule covers.
use std::net::IpAddr;
use std::ops::RangeInclusive;

use ipnet::IpNet;

use crate::policy::exceptions::parse_server;

/// One rule: a network and, optionally, the ports it is limited to (none: every port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub net: IpNet,
    pub ports: Option<Vec<RangeInclusive<u16>>>,
}

impl Rule {
    /// `CIDR`, `IP`, `CIDR:PORTS` or `[IPv6-CIDR]:PORTS`, where PORTS is a comma-separated list
    /// of ports and ranges (`443,8443-8450`). The error says what is wrong, for a person.
    pub fn parse(s: &str) -> Result<Rule, String> {
        let s = s.trim();
        let (net, ports) = match s.strip_prefix('[') {
            Some(rest) => {
                let (net, after) = rest.split_once(']').ok_or_else(|| format!("`{s}`: `[` without `]`"))?;
                match after {
                    "" => (net, None),
                    _ => (net, Some(after.strip_prefix(':').ok_or_else(|| format!("`{s}`: expected `:` after `]`"))?)),
                }
            }
            // More than one colon and no brackets: a bare IPv6 address or network, no ports.
            None if s.matches(':').count() > 1 => (s, None),
            None => match s.split_once(':') {
                Some((net, ports)) => (net, Some(ports)),
                None => (s, None),
            },
        };
        let net = parse_server(net).ok_or_else(|| format!("`{net}` is not an IP address or CIDR network"))?;
        let ports = ports.map(|p| parse_ports(p).map_err(|e| format!("`{s}`: {e}"))).transpose()?;
        Ok(Rule { net, ports })
    }

    pub fn covers(&self, ip: IpAddr, port: u16) -> bool {
        self.net.contains(&ip) && self.ports.as_ref().is_none_or(|ps| ps.iter().any(|r| r.contains(&port)))
    }
}

fn parse_ports(s: &str) -> Result<Vec<RangeInclusive<u16>>, String> {
    let port = |p: &str| match p.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("`{}` is not a port (1-65535)", p.trim())),
        Ok(n) => Ok(n),
    };
    s.split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (port(a)?, port(b)?);
                if a > b {
                    return Err(format!("`{}`: the range runs backwards", part.trim()));
                }
                Ok(a..=b)
            }
            None => port(part).map(|p| p..=p),
        })
        .collect()
}

/// Where the prober may connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    allow: Vec<Rule>,
    deny: Vec<Rule>,
}

impl Scope {
    /// A scope from `--probe-allow` and `--probe-deny` rules; an empty allowlist is refused:
    /// the prober contacts nothing it was not explicitly given.
    pub fn new(allow: Vec<Rule>, deny: Vec<Rule>) -> Result<Scope, String> {
        if allow.is_empty() {
            return Err("the prober needs at least one --probe-allow CIDR[:PORTS] (or `allow` in [probe]): \
                        it contacts only servers inside an explicit allowlist"
                .into());
        }
        Ok(Scope { allow, deny })
    }

    /// May the prober connect to `ip`:`port`? Inside an allow rule and no deny rule.
    pub fn permits(&self, ip: IpAddr, port: u16) -> bool {
        self.allow.iter().any(|r| r.covers(ip, port)) && !self.deny.iter().any(|r| r.covers(ip, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn rules_parse_networks_addresses_and_port_lists() {
        let r = Rule::parse("10.1.0.0/16:443,8443-8450").unwrap();
        assert!(r.covers(ip("10.1.2.3"), 443) && r.covers(ip("10.1.2.3"), 8450));
        assert!(!r.covers(ip("10.1.2.3"), 444) && !r.covers(ip("10.2.0.1"), 443));
        let any_port = Rule::parse("192.0.2.7").unwrap();
        assert!(any_port.covers(ip("192.0.2.7"), 1) && !any_port.covers(ip("192.0.2.8"), 1));
        let v6 = Rule::parse("[2001:db8::/32]:443").unwrap();
        assert!(v6.covers(ip("2001:db8::1"), 443) && !v6.covers(ip("2001:db8::1"), 80));
        assert!(Rule::parse("2001:db8::/32").unwrap().covers(ip("2001:db8:ffff::1"), 9));
    }

    #[test]
    fn bad_rules_say_what_is_wrong() {
        assert_eq!(Rule::parse("10.0.0.0/33").unwrap_err(), "`10.0.0.0/33` is not an IP address or CIDR network");
        assert_eq!(Rule::parse("lab:443").unwrap_err(), "`lab` is not an IP address or CIDR network");
        assert_eq!(Rule::parse("10.0.0.1:0").unwrap_err(), "`10.0.0.1:0`: `0` is not a port (1-65535)");
        assert_eq!(Rule::parse("10.0.0.1:9-3").unwrap_err(), "`10.0.0.1:9-3`: `9-3`: the range runs backwards");
        assert_eq!(Rule::parse("[2001:db8::1").unwrap_err(), "`[2001:db8::1`: `[` without `]`");
        assert!(Rule::parse("10.0.0.1:").is_err());
    }

    #[test]
    fn empty_allowlist_is_refused_and_deny_wins() {
        assert!(Scope::new(vec![], vec![Rule::parse("10.0.0.0/8").unwrap()]).unwrap_err().contains("--probe-allow"));
        let s = Scope::new(
            vec![Rule::parse("10.0.0.0/8:443").unwrap()],
            vec![Rule::parse("10.9.0.0/16").unwrap(), Rule::parse("10.0.0.5:443").unwrap()],
        )
        .unwrap();
        assert!(s.permits(ip("10.1.1.1"), 443));
        assert!(!s.permits(ip("10.1.1.1"), 80), "port outside the rule");
        assert!(!s.permits(ip("10.9.1.1"), 443) && !s.permits(ip("10.0.0.5"), 443), "denied");
        assert!(!s.permits(ip("192.0.2.1"), 443), "outside every allow rule");
        assert!(!s.permits(ip("::ffff:10.1.1.1"), 443), "a mapped IPv6 address is not the IPv4 rule's");
    }
}
