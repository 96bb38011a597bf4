//! Generator negotiation: what a server instance answers to a ClientHello — version, suite,
//! group, compression, ALPN — or the fatal alert it sends. Must never pick a suite the client
//! did not offer or the server's certificate cannot serve.
use super::certs::Chain;
use super::profiles::{ClientProfile, ServerProfile};
use super::tls::{suite, Auth, Kx, Suite, SECP256R1, TLS13, X25519MLKEM768};

pub struct Negotiated {
    pub version: u16,
    pub suite: &'static Suite,
    /// ECDHE / TLS 1.3 group (0 if none).
    pub group: u16,
    pub compression: u8,
    pub alpn: Option<&'static str>,
}

/// How one server instance picks a suite.
pub struct Choice<'a> {
    /// Its preference order (the profile's list, possibly tweaked per instance).
    pub prefs: &'a [u16],
    /// Honour the client's order instead (common on servers without a preference setting).
    pub client_order: bool,
    pub chain: &'a Chain,
    pub deflate: bool,
}

/// Server-side choice, or the fatal alert description the server answers with.
pub fn negotiate(c: &ClientProfile, s: &ServerProfile, how: &Choice) -> Result<Negotiated, u8> {
    let version = c.max().min(s.max);
    if version < s.min || version < c.min {
        return Err(70); // protocol_version
    }
    let usable = |st: &&Suite| {
        let auth_ok = match st.auth {
            Auth::Any => true,
            Auth::Ecdsa => how.chain.ec,
            Auth::Rsa => !how.chain.ec,
        };
        st.min <= version && (st.kx == Kx::Tls13) == (version == TLS13) && auth_ok
    };
    let chosen = if how.client_order {
        c.suites.iter().filter(|id| how.prefs.contains(id)).filter_map(|&id| suite(id)).find(usable)
    } else {
        how.prefs.iter().filter(|id| c.suites.contains(id)).filter_map(|&id| suite(id)).find(usable)
    };
    let Some(st) = chosen else { return Err(40) }; // handshake_failure
    let group = match st.kx {
        Kx::Tls13 => match s.groups.iter().find(|g| c.shares.contains(g)) {
            Some(&g) => g,
            None => return Err(40),
        },
        Kx::Ecdhe => {
            let usable = |g: &u16| c.groups.contains(g) && *g != X25519MLKEM768; // no hybrids below 1.3
            s.groups.iter().copied().find(usable).unwrap_or(SECP256R1)
        }
        _ => 0,
    };
    let compression = u8::from(how.deflate && version < TLS13 && c.compression.contains(&1));
    let alpn = if s.alpn { c.alpn.first().copied() } else { None };
    Ok(Negotiated { version, suite: st, group, compression, alpn })
}
