#!/usr/bin/python3
"""A fake MariaDB server for spec/integration/gtid_tracker_spec.lua (never
installed): it plays just enough of the protocol for one fsdb connection
(handshake without password, SET, the session limits query, COMMIT) and
answers the Nth COMMIT with an OK packet whose session state tracker
payload is case N of CASES -- well formed, or broken in one way. The Nth
"INSERT INTO okcases" gets OK_CASES' Nth OK packet: affected rows and
insert id beside no info, an info string, other tracker types.

    trackserver.py [--wait SECONDS]
        serves connections one after another on 127.0.0.1 (the COMMIT
        count goes on across them: a payload the client library refuses
        breaks its connection) until none comes for SECONDS. First line on
        stdout: "port N". Then one "query TEXT" line per COM_QUERY
        received, and "end".
"""
import argparse
import socket
import struct
import sys

from mywire import Wire

SERVER_STATUS_AUTOCOMMIT = 0x0002
SERVER_SESSION_STATE_CHANGED = 0x4000
CLIENT_LONG_PASSWORD = 1
CLIENT_PROTOCOL_41 = 0x200
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
CLIENT_SESSION_TRACK = 0x800000
CLIENT_TRANSACTIONS = 0x2000
CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_MULTI_RESULTS = 0x20000


def lenenc_int(n):
    if n < 251:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfc" + struct.pack("<H", n)
    if n < 1 << 24:
        return b"\xfd" + struct.pack("<I", n)[:3]
    return b"\xfe" + struct.pack("<Q", n)


def lenenc_str(b):
    return lenenc_int(len(b)) + b


def entry(kind, data):
    """One session state entry: type byte, then its data length-encoded
    (system variables hold a name and a value, schema, state change and
    transaction state one length-encoded string; GTIDS an encoding byte,
    then one)."""
    return bytes([kind]) + lenenc_str(data)


def sysvar(name, value):
    """One system variable tracker entry: type 0, then name and value."""
    return entry(0, lenenc_str(name) + lenenc_str(value))


# What the Nth COMMIT's OK packet carries after its info string (None: no
# session state at all). The spec knows them by their order.
CASES = [
    sysvar(b"last_gtid", b"0-1-7"),                          # 1 good
    sysvar(b"last_gtid", b"0-1-7' OR 1"),                    # 2 not a GTID
    sysvar(b"last_gtid", b"1-" * 40 + b"1"),                 # 3 too long
    sysvar(b"last_gtid", b"1--2"),                           # 4 empty part
    sysvar(b"last_gtidx", b"0-1-8"),                         # 5 another name
    entry(0, lenenc_str(b"last_gtid")),                      # 6 name, no value
    entry(0, lenenc_str(b"last_gtid") + b"\x0a0-1"),         # 7 value cut short
    b"\x00\xfc\xff\xff" + sysvar(b"last_gtid", b"0-1-9"),    # 8 entry longer than the packet
    sysvar(b"autocommit", b"ON") + b"\x05\x01",              # 9 a trailing entry cut short
    None,                                                    # 10 nothing tracked
    sysvar(b"character_set_client", b"utf8mb4") + sysvar(b"last_gtid", b"3-2-11"),  # 11 good, second
]


# (affected rows, insert id, info or None for none at all, session state)
# for the Nth "INSERT INTO okcases"; the spec knows them by their order.
OK_CASES = [
    (3, 77, None, None),                                     # 1 the fixed part only
    (1000, 70000, b"Records: 1000  Duplicates: 0  Warnings: 0", None),  # 2 info, no tracker
    (2, 1 << 40, b"Rows matched: 2", entry(1, lenenc_str(b"fsdb_test")) + entry(2, lenenc_str(b"1"))
     + entry(3, b"\x00" + lenenc_str(b"0-1-5")) + entry(5, lenenc_str(b"________"))),  # 3 other types only
    (1, 5, b"", entry(1, lenenc_str(b"x")) + sysvar(b"autocommit", b"ON")
     + sysvar(b"last_gtid", b"0-2-30") + entry(2, lenenc_str(b"1"))),   # 4 other types around last_gtid
]


def ok(state=None, affected=0, insert_id=0, info=b""):
    status = SERVER_STATUS_AUTOCOMMIT
    tail = b"" if info is None else lenenc_str(info)
    if state is not None:
        status |= SERVER_SESSION_STATE_CHANGED
        tail += lenenc_str(state)
    return (b"\x00" + lenenc_int(affected) + lenenc_int(insert_id) + struct.pack("<HH", status, 0)
            + tail)


def eof():
    return b"\xfe" + struct.pack("<HH", 0, SERVER_STATUS_AUTOCOMMIT)


def column(name):
    return (lenenc_str(b"def") + lenenc_str(b"") + lenenc_str(b"") + lenenc_str(b"")
            + lenenc_str(name) + lenenc_str(name) + b"\x0c" + struct.pack("<HIBHB", 45, 80, 0xFD, 0, 0)
            + b"\x00\x00")


def result(link, names, values):
    link.write(lenenc_int(len(names)))
    for n in names:
        link.write(column(n))
    link.write(eof())
    link.write(b"".join(lenenc_str(v) for v in values))
    link.write(eof())


def handshake():
    caps = (CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH
            | CLIENT_SESSION_TRACK | CLIENT_TRANSACTIONS | CLIENT_CONNECT_WITH_DB | CLIENT_MULTI_RESULTS)
    scramble = b"abcdefgh" + b"ijklmnopqrst"
    return (b"\x0a" + b"5.5.5-10.11.0-fake\x00" + struct.pack("<I", 42) + scramble[:8] + b"\x00"
            + struct.pack("<H", caps & 0xFFFF) + bytes([45]) + struct.pack("<H", SERVER_STATUS_AUTOCOMMIT)
            + struct.pack("<H", caps >> 16) + bytes([21]) + b"\x00" * 10 + scramble[8:] + b"\x00"
            + b"mysql_native_password\x00")


def serve(conn, commits, okcases):
    link = Wire(conn)
    link.write(handshake())
    link.read()  # the handshake response: no password, nothing to check
    link.write(ok())
    while True:
        link.seq = 0
        try:
            packet = link.read()
        except EOFError:
            return
        cmd, body = packet[0], packet[1:]
        if cmd == 0x01:  # COM_QUIT
            return
        if cmd != 0x03:  # COM_PING, COM_RESET_CONNECTION…
            link.write(ok())
            continue
        text = body.decode("utf-8", "replace")
        print("query", text.replace("\n", " "), flush=True)
        upper = text.strip().upper()
        if upper.startswith("SELECT @@SESSION.WAIT_TIMEOUT"):
            result(link, [b"w", b"m"], [b"28800", b"16777216"])
        elif upper.startswith("SELECT @@LAST_GTID"):
            result(link, [b"g"], [b"0-1-99"])
        elif upper.startswith("INSERT INTO OKCASES"):
            affected, insert_id, info, state = OK_CASES[okcases[0] % len(OK_CASES)]
            okcases[0] += 1
            link.write(ok(state, affected, insert_id, info))
        elif upper == "COMMIT":
            state = CASES[commits[0] % len(CASES)]
            commits[0] += 1
            link.write(ok(state))
        else:
            link.write(ok())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--wait", type=float, default=20)
    args = ap.parse_args()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    print("port", listener.getsockname()[1], flush=True)
    listener.settimeout(args.wait)
    commits, okcases = [0], [0]
    while True:
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            break
        conn.settimeout(args.wait)
        try:
            serve(conn, commits, okcases)
        except (EOFError, OSError):
            pass
        conn.close()
    listener.close()
    print("end", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
