#!/usr/bin/python3
"""Record real TLS 1.2 handshakes (and a few application-data records) for the gen-phi TDS
captures: Debian's python3 `ssl` (OpenSSL 3.0) client and server talk through memory BIOs;
every flight each side writes is saved. Run once; the output is committed and the Rust
generator (xtask/src/gen_phi/tds.rs) wraps it in TDS, so captures stay reproducible.

    /usr/bin/python3 xtask/src/gen_phi/tds/record_tls.py xtask/src/gen_phi/tds

Writes server-cert.der (self-signed RSA 2048, CN=SSL_Self_Signed_Fallback: what SQL Server
generates when no certificate is configured, valid 2025-01-01 .. 2035-01-01) and one
transcript per capture: records of `kind u8, length u32 BE, bytes`, kind 0/1 = a handshake
flight of the client/server (carried in TDS PRELOGIN packets), 2/3 = application data of the
client/server (raw TLS records on the stream). The application data encrypts TDS packets with
obviously fake values (the capture never shows them).
"""
import datetime
import os
import ssl
import struct
import sys
import tempfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def tds(ptype, payload, packet_id=1):
    return struct.pack(">BBHHBB", ptype, 1, 8 + len(payload), 0, packet_id, 0) + payload


def login7():
    # Fixed part (94 bytes) then UTF-16LE strings; the values are fake (ZZTEST).
    strings = [("ZZTEST-WS01", False), ("zztest_sql", False), ("FakeSqlPassw0rd!", True),
               ("zztest-app", False), ("ehr-sql", False), ("", False), ("zztest-lib", False),
               ("", False), ("zztest_ehr", False)]
    fixed = 94
    data = b""
    offsets = b""
    for text, secret in strings:
        raw = text.encode("utf-16-le")
        if secret:
            raw = bytes((((b << 4) & 0xF0) | (b >> 4)) ^ 0xA5 for b in raw)
        offsets += struct.pack("<HH", fixed + len(data), len(text))
        data += raw
    # ibHostName..ibDatabase (9 pairs, the 6th unused) then ClientID (6), SSPI, AtchDBFile,
    # ChangePassword, cbSSPILong.
    body = struct.pack("<IIIIII", 0, 0x74000004, 4096, 7, 4242, 0)
    body += bytes([0xE0, 0x03, 0x00, 0x00]) + struct.pack("<iI", 0, 0x0409)
    body += offsets + b"\x00\x50\x56\xAA\xBB\xCC" + struct.pack("<HHHHHHI", fixed + len(data), 0,
                                                                 fixed + len(data), 0,
                                                                 fixed + len(data), 0, 0)
    assert len(body) == fixed, len(body)
    body += data
    body = struct.pack("<I", len(body)) + body[4:]
    return tds(0x10, body)


def sql_batch(text):
    headers = struct.pack("<II", 22, 18) + struct.pack("<H", 2) + bytes(8) + struct.pack("<I", 1)
    return tds(0x01, headers + text.encode("utf-16-le"))


def loginack():
    # LOGINACK token: interface 1, TDS 7.4, program name "Microsoft SQL Server", 16.0.1000
    name = "Microsoft SQL Server".encode("utf-16-le")
    tok = bytes([1]) + bytes.fromhex("74000004") + bytes([len(name) // 2]) + name + bytes([16, 0, 0x03, 0xE8])
    done = bytes([0xFD, 0, 0, 0, 0]) + bytes(8)
    return tds(0x04, bytes([0xAD]) + struct.pack("<H", len(tok)) + tok + done)


def rows():
    done = bytes([0xFD, 0x10, 0, 0xC1, 0]) + struct.pack("<Q", 1)
    return tds(0x04, bytes([0xD1]) + "ZZTEST^ALPHA".encode("utf-16-le") + done)


def make_cert(out_dir):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SSL_Self_Signed_Fallback")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0x1a2b3c4d5e6f)
            .not_valid_before(datetime.datetime(2025, 1, 1)).not_valid_after(datetime.datetime(2035, 1, 1))
            .sign(key, hashes.SHA256()))
    der = cert.public_bytes(serialization.Encoding.DER)
    with open(os.path.join(out_dir, "server-cert.der"), "wb") as f:
        f.write(der)
    tmp = tempfile.mkdtemp()
    cert_pem, key_pem = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
    with open(cert_pem, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_pem, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    return cert_pem, key_pem


def record(cert_pem, key_pem, app):
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(cert_pem, key_pem)
    sctx.maximum_version = ssl.TLSVersion.TLSv1_2
    sctx.set_ciphers("ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256")
    sctx.options |= ssl.OP_NO_TICKET
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE  # TrustServerCertificate=yes, as such clients run
    cbio = [ssl.MemoryBIO(), ssl.MemoryBIO()]  # incoming, outgoing
    sbio = [ssl.MemoryBIO(), ssl.MemoryBIO()]
    c = cctx.wrap_bio(cbio[0], cbio[1], server_side=False, server_hostname="ehr-sql.hospital.example")
    s = sctx.wrap_bio(sbio[0], sbio[1], server_side=True)
    out = []
    done = [False, False]
    turn = 0
    for _ in range(10):
        conn, mine, peer = (c, cbio, sbio) if turn == 0 else (s, sbio, cbio)
        if not done[turn]:
            try:
                conn.do_handshake()
                done[turn] = True
            except ssl.SSLWantReadError:
                pass
        data = mine[1].read()
        if data:
            out.append((turn, data))
            peer[0].write(data)
        if all(done) and not mine[1].pending and not peer[1].pending:
            break
        turn = 1 - turn
    for side, plain in app:
        conn, mine, peer = (c, cbio, sbio) if side == 0 else (s, sbio, cbio)
        conn.write(plain)
        data = mine[1].read()
        out.append((2 + side, data))
        peer[0].write(data)
        other = s if side == 0 else c
        assert other.read(65536) == plain
    return out


def main():
    out_dir = sys.argv[1]
    cert_pem, key_pem = make_cert(out_dir)
    query = "SELECT name, mrn FROM patients WHERE name = 'ZZTEST^ALPHA'"
    scenarios = {
        # ENCRYPT_OFF against ENCRYPT_OFF: only LOGIN7 goes through TLS, the rest in clear.
        "login-only": [(0, login7())],
        # ENCRYPT_ON / ENCRYPT_REQ: the whole session.
        "on": [(0, login7()), (1, loginack()), (0, sql_batch(query)), (1, rows())],
        "required": [(0, login7()), (1, loginack()), (0, sql_batch(query)), (1, rows())],
    }
    for name, app in scenarios.items():
        flights = record(cert_pem, key_pem, app)
        with open(os.path.join(out_dir, f"tls12-{name}.bin"), "wb") as f:
            for kind, data in flights:
                f.write(struct.pack(">BI", kind, len(data)) + data)
        print(name, [(k, len(d)) for k, d in flights])


if __name__ == "__main__":
    main()
