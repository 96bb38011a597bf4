//! Inspect, plaintext, XMPP (RFC 6120 §5, client 5222 and server-to-server 5269): the stream
//! header, the STARTTLS offer in the server's stream features (and `<required/>` in it), the
//! client's `<starttls/>` and the server's `<proceed/>` or `<failure/>`, SASL PLAIN and legacy
//! `jabber:iq:auth` passwords in clear. Must never keep a JID, a host name, an attribute value
//! outside the closed sets below, a SASL payload or a stanza body. Bounded; never panics.
use serde::Serialize;

use super::facts::{push_distinct, Credential, Protocol, Session, StartTls};

const NS_STREAMS: &[u8] = b"http://etherx.jabber.org/streams";
const NS_TLS: &[u8] = b"urn:ietf:params:xml:ns:xmpp-tls";
const NS_SASL: &[u8] = b"urn:ietf:params:xml:ns:xmpp-sasl";
const NS_IQ_AUTH: &[u8] = b"jabber:iq:auth";
/// Most tags looked at per direction.
const MAX_TAGS: usize = 512;
/// Longest tag read (a stream header with many namespace declarations fits).
const MAX_TAG: usize = 2048;

/// What the stream headers and features showed, beyond the upgrade itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct XmppMeta {
    /// `client` (jabber:client, c2s) or `server` (jabber:server, s2s), from the default
    /// namespace of the stream header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<&'static str>,
    /// The server's `<starttls/>` feature held `<required/>`.
    pub tls_required: bool,
}

/// One start, end or empty-element tag.
#[derive(Debug)]
struct Tag<'a> {
    end: bool,
    empty: bool,
    prefix: &'a [u8],
    name: &'a [u8],
    /// Everything after the name, up to (not including) `/>` or `>`.
    attrs: &'a [u8],
}

impl Tag<'_> {
    fn is(&self, name: &str) -> bool {
        self.name == name.as_bytes()
    }

    /// The namespace the tag declares for itself (`xmlns` unprefixed, `xmlns:p` for `p:name`).
    fn ns(&self) -> Option<&[u8]> {
        if self.prefix.is_empty() {
            attr(self.attrs, b"xmlns")
        } else {
            attrs(self.attrs).find(|(k, _)| k.strip_prefix(b"xmlns:") == Some(self.prefix)).map(|(_, v)| v)
        }
    }

    /// Declared namespace is `ns`, or none is declared (the element relies on a prefix or a
    /// default declared further up, as peers commonly do).
    fn ns_is_or_none(&self, ns: &[u8]) -> bool {
        self.ns().is_none_or(|v| v == ns)
    }

    fn is_stream_header(&self) -> bool {
        !self.end
            && self.is("stream")
            && (self.prefix == b"stream"
                || attrs(self.attrs).any(|(k, v)| v == NS_STREAMS && (k == b"xmlns" || k.starts_with(b"xmlns:"))))
    }
}

/// `name = 'value'` or `name = "value"` pairs, up to the first malformed one.
fn attrs(mut b: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    std::iter::from_fn(move || {
        let s = b.iter().position(|c| !c.is_ascii_whitespace())?;
        let rest = &b[s..];
        let eq = rest.iter().position(|&c| c == b'=')?;
        let key = rest[..eq].trim_ascii();
        let after = rest[eq + 1..].trim_ascii_start();
        let q = *after.first().filter(|q| matches!(q, b'\'' | b'"'))?;
        let len = after[1..].iter().position(|&c| c == q)?;
        let value = &after[1..1 + len];
        b = &after[2 + len..];
        Some((key, value))
    })
    .take(64)
}

fn attr<'a>(b: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    attrs(b).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// The tags of one direction's head, in order: skips the XML declaration, comments and
/// processing instructions, and character data; stops at a cut tag, at bytes that are not XML
/// text (a TLS record after the upgrade), or after [`MAX_TAGS`].
fn tags(buf: &[u8]) -> Vec<Tag<'_>> {
    let mut out = Vec::new();
    let mut rest = buf;
    while out.len() < MAX_TAGS {
        let Some(lt) = rest.iter().position(|&b| b == b'<') else { break };
        if rest[..lt].iter().any(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) {
            break;
        }
        rest = &rest[lt..];
        if let Some(skip) = [(&b"<!--"[..], &b"-->"[..]), (b"<?", b"?>"), (b"<!", b">")]
            .iter()
            .find(|(open, _)| rest.starts_with(open))
            .map(|(_, close)| close)
        {
            match rest.windows(skip.len()).take(MAX_TAG).position(|w| w == *skip) {
                Some(at) => rest = &rest[at + skip.len()..],
                None => break,
            }
            continue;
        }
        // The tag ends at the first `>` outside a quoted attribute value.
        let mut quote = None;
        let mut close = None;
        for (i, &b) in rest.iter().enumerate().take(MAX_TAG).skip(1) {
            match (quote, b) {
                (Some(q), _) if b == q => quote = None,
                (Some(_), _) => {}
                (None, b'\'' | b'"') => quote = Some(b),
                (None, b'>') => {
                    close = Some(i);
                    break;
                }
                (None, b'<') => break,
                _ => {}
            }
        }
        let Some(close) = close else { break };
        let Some(tag) = parse_tag(&rest[1..close]) else { break };
        out.push(tag);
        rest = &rest[close + 1..];
    }
    out
}

/// The inside of `<…>`: `/name`, `name attrs`, `name attrs/`.
fn parse_tag(inner: &[u8]) -> Option<Tag<'_>> {
    let (end, inner) = match inner.strip_prefix(b"/") {
        Some(r) => (true, r),
        None => (false, inner),
    };
    let (empty, inner) = match inner.strip_suffix(b"/") {
        Some(r) if !end => (true, r),
        _ => (false, inner),
    };
    let n = inner.iter().position(|b| b.is_ascii_whitespace()).unwrap_or(inner.len());
    let qname = &inner[..n];
    let ok = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':') || *b >= 0x80;
    if qname.is_empty() || !qname.iter().all(ok) {
        return None;
    }
    let (prefix, name) = match qname.iter().position(|&b| b == b':') {
        Some(c) => (&qname[..c], &qname[c + 1..]),
        None => (&qname[..0], qname),
    };
    Some(Tag { end, empty, prefix, name, attrs: &inner[n..] })
}

/// The stream kind of a header's default namespace.
fn stream_kind(t: &Tag<'_>) -> Option<&'static str> {
    match attr(t.attrs, b"xmlns")? {
        b"jabber:client" => Some("client"),
        b"jabber:server" => Some("server"),
        _ => None,
    }
}

/// The server's side: the offer (and `<required/>` inside it), the answer to a request.
struct ServerSide {
    offered: bool,
    required: bool,
    proceed: bool,
    failure: bool,
}

fn server_side(s: &[Tag<'_>]) -> ServerSide {
    let mut r = ServerSide { offered: false, required: false, proceed: false, failure: false };
    let mut in_starttls = false;
    for t in s {
        match () {
            _ if t.is("starttls") && !t.end && t.ns_is_or_none(NS_TLS) => {
                r.offered = true;
                in_starttls = !t.empty;
            }
            _ if t.is("starttls") && t.end => in_starttls = false,
            _ if t.is("required") && !t.end && in_starttls => r.required = true,
            _ if t.is("proceed") && !t.end && t.ns_is_or_none(NS_TLS) => {
                r.proceed = true;
                break; // TLS follows
            }
            _ if t.is("failure") && !t.end && t.ns() == Some(NS_TLS) => r.failure = true,
            _ => {}
        }
    }
    r
}

/// XMPP in this flow: the upgrade, credentials sent in clear, the stream facts.
pub(super) fn detect(client: &[u8], server: &[u8]) -> Option<(Session, XmppMeta)> {
    let c = tags(client);
    let s = tags(server);
    let header = |t: &[Tag<'_>]| t.first().filter(|t| t.is_stream_header()).map(stream_kind);
    let (ch, sh) = (header(&c), header(&s));
    if ch.is_none() && sh.is_none() {
        return None;
    }
    let srv = server_side(&s);
    let mut st = StartTls { offered: srv.offered, ..StartTls::default() };
    let mut credentials = Vec::new();
    // Client elements at depth 1 are the children of the stream: STARTTLS, SASL, stanzas.
    let mut depth = 0usize;
    let mut iq_auth = false;
    for t in &c {
        if t.is_stream_header() {
            depth = 1; // a stream (re)start after SASL or a refused upgrade
            continue;
        }
        if t.end {
            depth = depth.saturating_sub(1);
            if t.is("query") {
                iq_auth = false;
            }
            continue;
        }
        if depth == 1 {
            if t.is("starttls") && t.ns_is_or_none(NS_TLS) {
                st.requested = true;
                if srv.proceed {
                    st.accepted = Some(true);
                    break; // TLS follows
                }
                if srv.failure {
                    st.accepted = Some(false);
                }
            } else {
                st.cleartext_after_offer |= st.offered;
                let plain = attr(t.attrs, b"mechanism").is_some_and(|m| m.eq_ignore_ascii_case(b"PLAIN"));
                if t.is("auth") && t.ns_is_or_none(NS_SASL) && plain {
                    push_distinct(&mut credentials, Credential::XmppSaslPlain);
                }
            }
        }
        if t.is("query") && t.ns() == Some(NS_IQ_AUTH) {
            iq_auth = !t.empty;
        }
        if iq_auth && t.is("password") {
            push_distinct(&mut credentials, Credential::XmppIqAuthPassword);
        }
        if !t.empty {
            depth += 1;
        }
    }
    let meta = XmppMeta { stream: ch.flatten().or(sh.flatten()), tls_required: srv.required };
    Some((Session { protocol: Protocol::Xmpp, starttls: st, credentials }, meta))
}

#[cfg(test)]
#[path = "xmpp_tests.rs"]
pub(crate) mod tests;
