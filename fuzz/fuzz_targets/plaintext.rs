//! Fuzz target: arbitrary bytes as the client and server heads of a clear flow through every
//! plaintext inspector (HL7, DICOM, HTTP/FHIR, X12, SMTP/IMAP/POP3/FTP, LDAP, databases, XMPP, IRC).
//! Input: `tlsmon_fuzz::halves`, tag = the server port. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (port, client, server) = tlsmon_fuzz::halves(data);
    let _ = monitor::inspect::plaintext::inspect(client, server, port);
});
