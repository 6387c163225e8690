"""MySQL client/server packets over a socket, for the specs' fake servers
(authserver.py, trackserver.py): 3-byte length, sequence number, payload."""

import struct


class Wire:
    """MySQL packets over a socket, recording what the client sends."""

    def __init__(self, sock):
        self.sock = sock
        self.seq = 0
        self.received = []

    def read_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def read(self):
        head = self.read_exact(4)
        n = head[0] | head[1] << 8 | head[2] << 16
        self.seq = (head[3] + 1) & 0xff
        payload = self.read_exact(n)
        self.received.append(payload)
        return payload

    def write(self, payload):
        self.sock.sendall(struct.pack("<I", len(payload))[:3] + bytes([self.seq]) + payload)
        self.seq = (self.seq + 1) & 0xff
