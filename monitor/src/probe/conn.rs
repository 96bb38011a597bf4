//! Probe, one connection: connect to a server, run a TLS handshake with rustls under timeouts,
//! record the chain the server sent (a verifier that keeps the DER and lets rustls check the
//! handshake signatures), close with close_notify. Sends the SNI clients used and nothing
//! else: no application data is ever written or read.
//! Must never hang (every step has a timeout), never hold more than its caps, never panic on
//! what a server sends.
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::inspect::tls::cert::MAX_CHAIN;

/// Bytes of the server's side kept for the record parser (ServerHello, and the whole TLS 1.2
/// handshake with its certificates): rustls refuses handshake messages over 64 KiB anyway.
const TAP_SERVER: usize = 96 << 10;
/// Bytes of our own side kept (the ClientHello).
const TAP_CLIENT: usize = 16 << 10;
/// How long the close_notify may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// How one connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Handshake complete (and closed).
    Ok,
    /// No TCP connection: refused, no route, reset.
    Unreachable,
    /// Connect or handshake took longer than the timeout.
    Timeout,
    /// Connected, but the handshake failed (alert, garbage, oversized message, bad signature).
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Unreachable => "unreachable",
            Outcome::Timeout => "timeout",
            Outcome::Failed => "failed",
        }
    }

    /// Every value, in metric label order.
    pub const ALL: [Outcome; 4] = [Outcome::Ok, Outcome::Unreachable, Outcome::Timeout, Outcome::Failed];
}

/// What one connection brought back.
#[derive(Debug, Default)]
pub struct Record {
    pub outcome: Option<Outcome>,
    /// Why it did not complete, in words (or, when it did, that the handshake signature could
    /// not be checked).
    pub error: Option<String>,
    /// Our local address (the event's source).
    pub local: Option<SocketAddr>,
    /// The bytes each side sent in clear up to the caps (client, server).
    pub client_bytes: Vec<u8>,
    pub server_bytes: Vec<u8>,
    /// The certificates as the server sent them (leaf first, at most `MAX_CHAIN`), when
    /// rustls got that far, and how many it sent.
    pub chain: Vec<Vec<u8>>,
    pub chain_sent: usize,
}

/// Both directions' bytes, shared with the stream so a timeout does not lose them.
#[derive(Default)]
struct Taps {
    client: Vec<u8>,
    server: Vec<u8>,
}

/// A TCP stream that keeps a copy of the first bytes each way.
struct Tap {
    inner: TcpStream,
    taps: Arc<Mutex<Taps>>,
}

fn keep(into: &mut Vec<u8>, bytes: &[u8], cap: usize) {
    let room = cap.saturating_sub(into.len());
    into.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

impl AsyncRead for Tap {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = r {
            if let Ok(mut t) = this.taps.lock() {
                keep(&mut t.server, &buf.filled()[before..], TAP_SERVER);
            }
        }
        r
    }
}

impl AsyncWrite for Tap {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = r {
            if let Ok(mut t) = this.taps.lock() {
                keep(&mut t.client, &data[..n], TAP_CLIENT);
            }
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Keeps the chain the server presents and accepts it whatever it is (judging it is the
/// policy's job, against `--ca-bundle`); the handshake signatures are still checked by
/// rustls' own code, so a completed probe means the server holds the leaf's key.
#[derive(Debug)]
struct Recorder {
    provider: Arc<CryptoProvider>,
    chain: Mutex<(Vec<Vec<u8>>, usize)>,
    /// Why the handshake signature was not checked, if it was not.
    note: Mutex<Option<String>>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut c) = self.chain.lock() {
            let all = std::iter::once(end_entity).chain(intermediates);
            *c = (all.take(MAX_CHAIN).map(|d| d.as_ref().to_vec()).collect(), 1 + intermediates.len());
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.unless_unreadable(verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.unless_unreadable(verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        ))
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

impl Recorder {
    /// A leaf rustls' certificate code cannot read (an X.509 v1 certificate, an unusual
    /// encoding or key) does not stop the probe: its facts are what we came for, and nothing
    /// is sent over the connection. The signature is then not checked, and the probe says so.
    /// A signature that was checked and is wrong still fails the handshake.
    fn unless_unreadable(
        &self,
        r: Result<HandshakeSignatureValid, rustls::Error>,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        match r {
            Err(rustls::Error::InvalidCertificate(why)) if why != rustls::CertificateError::BadSignature => {
                if let Ok(mut n) = self.note.lock() {
                    *n = Some(format!("handshake signature not checked: rustls cannot read the leaf ({why:?})"));
                }
                Ok(HandshakeSignatureValid::assertion())
            }
            r => r,
        }
    }
}

/// The name rustls is given: the SNI clients used when it is a DNS name (sent as SNI), else
/// the address (rustls sends no SNI for an address).
fn server_name(addr: SocketAddr, sni: Option<&str>) -> ServerName<'static> {
    sni.and_then(|s| ServerName::try_from(s.to_string()).ok())
        .filter(|n| matches!(n, ServerName::DnsName(_)))
        .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()))
}

/// Connect, handshake (TLS 1.3 or 1.2), close. Each of connect and handshake has `timeout`.
pub async fn handshake(addr: SocketAddr, sni: Option<&str>, timeout: Duration, own: &super::Own) -> Record {
    let mut rec = Record::default();
    let tcp = match tokio::time::timeout(timeout, own.connect(addr)).await {
        Err(_) => return fail(rec, Outcome::Timeout, format!("no TCP connection within {}", secs(timeout))),
        Ok(Err(e)) => return fail(rec, Outcome::Unreachable, format!("TCP connect failed: {e}")),
        Ok(Ok(s)) => s,
    };
    rec.local = tcp.local_addr().ok();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let recorder =
        Arc::new(Recorder { provider: provider.clone(), chain: Mutex::new((Vec::new(), 0)), note: Mutex::new(None) });
    let config = match rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
    {
        Ok(b) => b.dangerous().with_custom_certificate_verifier(recorder.clone()).with_no_client_auth(),
        Err(e) => return fail(rec, Outcome::Failed, format!("TLS client set-up: {e}")),
    };
    let taps = Arc::new(Mutex::new(Taps::default()));
    let tap = Tap { inner: tcp, taps: taps.clone() };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let connecting = connector.connect(server_name(addr, sni), tap).into_fallible();
    let (outcome, error) = match tokio::time::timeout(timeout, connecting).await {
        Err(_) => (Outcome::Timeout, Some(format!("TLS handshake not complete within {}", secs(timeout)))),
        Ok(Err((e, _))) => (Outcome::Failed, Some(format!("TLS handshake failed: {e}"))),
        Ok(Ok(mut tls)) => {
            // close_notify, then FIN; nothing else is written.
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, tls.shutdown()).await;
            (Outcome::Ok, None)
        }
    };
    rec.outcome = Some(outcome);
    rec.error = error;
    if let Ok(mut t) = taps.lock() {
        rec.client_bytes = std::mem::take(&mut t.client);
        rec.server_bytes = std::mem::take(&mut t.server);
    }
    if let (None, Ok(mut n)) = (&rec.error, recorder.note.lock()) {
        rec.error = n.take();
    }
    if let Ok(mut c) = recorder.chain.lock() {
        (rec.chain, rec.chain_sent) = std::mem::take(&mut *c);
    }
    rec
}

fn fail(mut rec: Record, outcome: Outcome, error: String) -> Record {
    rec.outcome = Some(outcome);
    rec.error = Some(error);
    rec
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}
