"""A real QUIC peer for the lab (aioquic from PyPI, installed by `cargo xtask setup`).

  quic_peer.py server HOST PORT CERT KEY      serve until killed (ALPN tlsmon-lab)
  quic_peer.py client HOST PORT SNI [big]     one handshake and a PING, then close;
                                              `big` pads the ClientHello with 40 extra ALPN
                                              names so it spans two Initial packets
"""
import asyncio
import ssl
import sys

from aioquic.asyncio import connect, serve
from aioquic.quic.configuration import QuicConfiguration

ALPN = "tlsmon-lab"


async def server(host, port, cert, key):
    cfg = QuicConfiguration(is_client=False, alpn_protocols=[ALPN])
    cfg.load_cert_chain(cert, key)
    await serve(host, port, configuration=cfg)
    await asyncio.Future()


async def client(host, port, sni, big):
    alpn = [ALPN] + ([f"pad-{i:03d}-" + "x" * 40 for i in range(40)] if big else [])
    cfg = QuicConfiguration(is_client=True, alpn_protocols=alpn, server_name=sni, verify_mode=ssl.CERT_NONE)
    async with connect(host, port, configuration=cfg) as c:
        await c.ping()


def main():
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "server":
        asyncio.run(server(host, port, sys.argv[4], sys.argv[5]))
    else:
        asyncio.run(asyncio.wait_for(client(host, port, sys.argv[4], len(sys.argv) > 5), 10))


if __name__ == "__main__":
    main()
