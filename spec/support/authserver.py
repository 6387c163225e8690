#!/usr/bin/python3
"""A rogue MySQL server for spec/integration/auth_spec.lua (never installed).

It completes the start of a real handshake on 127.0.0.1 (or a unix socket),
asks the client for one authentication plugin -- as the plugin of its
handshake or by an auth switch request -- plays that plugin's server side
far enough for the password to come out, and records every byte the client
sends. For the RSA paths it sends its own public key and tries to decrypt
whatever comes back with its private key, as an attacker would.

    authserver.py --setup DIR
        writes DIR/ca.pem (a CA), two certificates signed by it --
        rogue.pem + rogue.key for the name rogue.invalid only (a man in the
        middle holding some certificate of the CA), good.pem + good.key for
        IP:127.0.0.1 (the server the URL names) -- and DIR/rsa.pem.
    authserver.py --dir DIR --plugin NAME --as initial|switch
                  [--tls rogue|good] [--unix PATH] [--wait SECONDS]
        serves one connection. First line on stdout: "port N" (or "ready"
        for a socket). When the client is gone: "accepted 0|1", one
        "packet HEX" line per packet received, "decrypted HEX" for each one
        the RSA key opens (XORed back with the scramble, as the client XORed
        it), "switch_at N" when it sent an auth switch request after N
        packets, "tls 1" when TLS was set up, then "end".
"""
import argparse
import os
import secrets
import socket
import ssl
import struct
import subprocess
import sys

from mywire import Wire
import tempfile

CLIENT_SSL = 0x800
CLIENT_PLUGIN_AUTH_LENENC = 0x200000
# long password, found rows, long flag, with db, protocol 4.1, transactions,
# secure connection, multi statements/results, ps multi results, plugin
# auth, connect attrs, lenenc auth data: what a MySQL 8 server offers.
CAPS = 0x1 | 0x2 | 0x4 | 0x8 | 0x200 | 0x2000 | 0x8000 | 0x10000 | 0x20000 | 0x40000 \
    | 0x80000 | 0x100000 | CLIENT_PLUGIN_AUTH_LENENC


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def setup(d):
    os.makedirs(d, exist_ok=True)
    p = lambda name: os.path.join(d, name)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", p("ca.key"), "-out", p("ca.pem"),
            "-days", "2", "-subj", "/CN=fsdb rogue test CA")
    for serial, (name, san) in enumerate([("rogue", "DNS:rogue.invalid"),
                                          ("good", "IP:127.0.0.1")], 2):
        openssl("req", *ec, "-keyout", p(name + ".key"), "-out", p(name + ".csr"),
                "-subj", "/CN=" + san.split(":")[1])
        with open(p(name + ".ext"), "w") as f:
            f.write("subjectAltName=" + san + "\n")
        openssl("x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.pem"), "-CAkey",
                p("ca.key"), "-set_serial", str(serial), "-days", "2", "-extfile",
                p(name + ".ext"), "-out", p(name + ".pem"))
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
            "-out", p("rsa.pem"))
    openssl("pkey", "-in", p("rsa.pem"), "-pubout", "-out", p("rsa_pub.pem"))


def handshake(plugin, scramble, tls):
    caps = CAPS | (CLIENT_SSL if tls else 0)
    return (b"\x0a" + b"8.0.36-rogue\x00" + struct.pack("<I", 7) + scramble[:8] + b"\x00"
            + struct.pack("<H", caps & 0xffff) + b"\x2d" + struct.pack("<H", 2)
            + struct.pack("<H", caps >> 16) + bytes([len(scramble) + 1]) + b"\x00" * 10
            + scramble[8:] + b"\x00" + plugin.encode() + b"\x00")


def auth_data(response):
    """The auth data of a handshake response (protocol 4.1, lenenc data)."""
    user_end = response.index(b"\x00", 32)
    n = response[user_end + 1]
    return response[user_end + 2:user_end + 2 + n] if n < 0xfb else b""


def reply(plugin, payload, pem):
    """The server's next step of the plugin's exchange, or None to end."""
    if plugin == "caching_sha2_password" and len(payload) == 32:
        return b"\x01\x04"  # the cache has no entry: perform full authentication
    if (plugin == "caching_sha2_password" and payload == b"\x02") or \
            (plugin == "sha256_password" and payload == b"\x01"):
        return b"\x01" + pem  # the public key the client asked for
    return None


def decrypt(d, blob, scramble):
    with tempfile.NamedTemporaryFile(dir=d) as f:
        f.write(blob)
        f.flush()
        r = subprocess.run(["openssl", "pkeyutl", "-decrypt", "-inkey", os.path.join(d, "rsa.pem"),
                            "-pkeyopt", "rsa_padding_mode:oaep", "-in", f.name],
                           capture_output=True)
    if r.returncode != 0:
        return None
    return bytes(b ^ scramble[i % len(scramble)] for i, b in enumerate(r.stdout))


def serve(args, conn):
    scramble = bytes(secrets.choice(range(1, 128)) for _ in range(20))
    wire = Wire(conn)
    tls = False
    switch_at = None
    with open(os.path.join(args.dir, "rsa_pub.pem"), "rb") as f:
        pem = f.read()
    first = args.plugin if args.mode == "initial" else "mysql_native_password"
    try:
        wire.write(handshake(first, scramble, args.tls is not None))
        response = wire.read()
        caps = struct.unpack("<I", response[:4])[0]
        if args.tls and caps & CLIENT_SSL and len(response) == 32:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(os.path.join(args.dir, args.tls + ".pem"),
                                os.path.join(args.dir, args.tls + ".key"))
            wire.sock = ctx.wrap_socket(conn, server_side=True)
            tls = True
            response = wire.read()
        if args.mode == "initial":
            payload = auth_data(response)
        else:
            data = b"\x05Password: " if args.plugin == "dialog" else scramble + b"\x00"
            switch_at = len(wire.received)
            wire.write(b"\xfe" + args.plugin.encode() + b"\x00" + data)
            payload = wire.read()
        for _ in range(4):
            step = reply(args.plugin, payload, pem)
            if step is None:
                break
            wire.write(step)
            payload = wire.read()
        wire.write(b"\xff" + struct.pack("<H", 1045) + b"#28000Access denied (rogue server)")
        wire.read()  # until the client hangs up
    except (EOFError, OSError, ssl.SSLError, ValueError, IndexError):
        pass
    print("accepted 1")
    for p in wire.received:
        print("packet", p.hex())
        if len(p) == 256:
            plain = decrypt(args.dir, p, scramble)
            if plain is not None:
                print("decrypted", plain.hex())
    if switch_at is not None:
        print("switch_at", switch_at)
    if tls:
        print("tls 1")
    print("end")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--setup")
    ap.add_argument("--dir")
    ap.add_argument("--plugin")
    ap.add_argument("--as", dest="mode", choices=["initial", "switch"])
    ap.add_argument("--tls", choices=["rogue", "good"])
    ap.add_argument("--wait", type=float, default=20)
    ap.add_argument("--unix")
    args = ap.parse_args()
    if args.setup:
        setup(args.setup)
        return
    if args.unix:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(args.unix)
        listener.listen(1)
        print("ready", flush=True)
    else:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        print("port", listener.getsockname()[1], flush=True)
    listener.settimeout(args.wait)
    try:
        conn, _ = listener.accept()
        conn.settimeout(10)
        serve(args, conn)
        conn.close()
    except socket.timeout:
        print("accepted 0")
        print("end")
    finally:
        listener.close()
        if args.unix:
            os.unlink(args.unix)


if __name__ == "__main__":
    sys.exit(main())
