#!/usr/bin/env python3
"""qptool.py - checks and generators for quipu's integration tests.

Standard library only.  Subcommands (each exits 1 with a message on a failed
check):

  find FILE KEY [SUBKEY]      print the value of KEY found anywhere in the JSON
                              object in FILE (shallowest first), or SUBKEY in it
  same WANT GOT               every field of record WANT equals GOT's field
  jsonl FILE [KIND] [N]       every line is a record (of KIND); prints ids;
                              exactly N lines when N is given
  csv FILE KIND N [ID...]     quipu CSV: header id,kind,org...; N data rows of
                              KIND; holds each ID
  geojson FILE N LON          a FeatureCollection of N features with an id
                              property each, holding the coordinate LON exactly
                              (LON "-": no coordinate check)
  gen-producers N ORG DNI0 [--bad L] [--dup L] [--kind K]
                              N producer JSON lines; file line L has a 7-digit
                              DNI (--bad) or DNI0 itself (--dup);
                              with --kind each record names its kind
  gen-producers-csv ...       the same as CSV with a header row
  pick FILE KEY VALUE OUT     in JSON lines FILE, the OUT field of the record
                              whose KEY is VALUE
  hostile SOCK [ORG]          abuse the local API socket (see hostile())
"""
import csv
import json
import os
import random
import socket
import struct
import sys
import time


def die(msg):
    print("qptool: " + msg, file=sys.stderr)
    sys.exit(1)


def load(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        return json.loads(text)
    except ValueError as e:
        die("%s: not JSON (%s): %r" % (path, e, text[:300]))


def find(obj, key):
    """Breadth-first search for key in nested objects."""
    queue = [obj]
    while queue:
        o = queue.pop(0)
        if isinstance(o, dict):
            if key in o:
                return o[key]
            queue.extend(o.values())
        elif isinstance(o, list):
            queue.extend(o)
    return None


def cmd_find(args):
    v = find(load(args[0]), args[1])
    if v is None:
        die("%s: no key %r" % (args[0], args[1]))
    if len(args) > 2:
        if not isinstance(v, dict):
            die("%s: %r is not an object" % (args[0], args[1]))
        v = v.get(args[2], 0)
    print(v if isinstance(v, (int, str)) and not isinstance(v, bool)
          else json.dumps(v))


def cmd_same(args):
    want, got = load(args[0]), load(args[1])
    if isinstance(got, dict) and "record" in got and "id" not in got:
        got = got["record"]
    bad = []
    for k, v in want.items():
        if k not in got:
            bad.append("%s missing" % k)
        elif got[k] != v:
            bad.append("%s: got %s, want %s" % (k, json.dumps(got[k]),
                                                json.dumps(v)))
    for k in ("id", "kind", "org"):
        if k not in got:
            bad.append("%s missing" % k)
    if bad:
        die("record differs: " + "; ".join(bad))


def cmd_jsonl(args):
    kind = args[1] if len(args) > 1 and args[1] else None
    n = int(args[2]) if len(args) > 2 else None
    ids = []
    with open(args[0], encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                die("line %d is empty" % i)
            try:
                r = json.loads(line)
            except ValueError as e:
                die("line %d: not JSON: %s" % (i, e))
            if not isinstance(r, dict) or "id" not in r:
                die("line %d: not a record" % i)
            if kind and r.get("kind") != kind:
                die("line %d: kind %r, want %r" % (i, r.get("kind"), kind))
            ids.append(r["id"])
    if n is not None and len(ids) != n:
        die("%d records, want %d" % (len(ids), n))
    if len(set(ids)) != len(ids):
        die("duplicate ids")
    for i in ids:
        print(i)


def cmd_csv(args):
    path, kind, n = args[0], args[1], int(args[2])
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    if not rows:
        die("empty CSV")
    if rows[0][:3] != ["id", "kind", "org"]:
        die("header starts %r, want id,kind,org" % rows[0][:3])
    if len(rows) - 1 != n:
        die("%d data rows, want %d" % (len(rows) - 1, n))
    ids = set()
    for i, r in enumerate(rows[1:], 2):
        if len(r) != len(rows[0]):
            die("row %d has %d cells, header %d" % (i, len(r), len(rows[0])))
        if r[1] != kind:
            die("row %d: kind %r" % (i, r[1]))
        ids.add(r[0])
    for want in args[3:]:
        if want not in ids:
            die("id %s not in CSV" % want)
    print(",".join(rows[0]))


def walk_coords(c):
    if isinstance(c, list) and c and isinstance(c[0], (int, float)):
        yield c
    elif isinstance(c, list):
        for x in c:
            yield from walk_coords(x)


def cmd_geojson(args):
    path, n, lon = args[0], int(args[1]), args[2]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    fc = load(path)
    if fc.get("type") != "FeatureCollection":
        die("type is %r" % fc.get("type"))
    feats = fc.get("features")
    if not isinstance(feats, list) or len(feats) != n:
        die("features: %r, want %d" % (None if feats is None else len(feats), n))
    found = False
    for ft in feats:
        if ft.get("type") != "Feature":
            die("a feature has type %r" % ft.get("type"))
        g = ft.get("geometry")
        if not isinstance(g, dict) or g.get("type") not in (
                "Point", "Polygon", "MultiPolygon"):
            die("bad geometry %r" % g)
        props = ft.get("properties")
        if not isinstance(props, dict) or "id" not in props:
            die("feature without properties.id")
        for pos in walk_coords(g.get("coordinates")):
            if lon != "-" and float(lon) in pos:
                found = True
    if lon == "-":
        return
    if not found:
        die("coordinate %s not found" % lon)
    if lon not in text:
        die("coordinate %s not written literally" % lon)


def cmd_pick(args):
    path, key, value, out = args
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if str(r.get(key)) == value:
                v = r.get(out)
                print(v if isinstance(v, str) else json.dumps(v))
                return
    die("no record with %s=%s" % (key, value))


def producer(i, org, dni):
    return {"org": org, "dni": "%08d" % dni,
            "name": "Productor %d Quispe" % i,
            "sex": "FM"[i % 2], "community": "Anexo %d" % (i % 7)}


def gen_opts(args):
    """N ORG DNI0 [--bad L] [--dup L] [--kind K]"""
    o = {"n": int(args[0]), "org": args[1], "dni0": int(args[2]),
         "bad": 0, "dup": 0, "kind": None}
    i = 3
    while i < len(args):
        o[args[i].lstrip("-")] = (args[i + 1] if args[i] == "--kind"
                                  else int(args[i + 1]))
        i += 2
    return o


def gen_records(o, first_line):
    """The producer records (DNIs DNI0+1...); the one on file line `bad` has
    a 7-digit DNI, the one on line `dup` has DNI0 itself (the test adds a
    producer with DNI0 first, so only quipud can see the clash)."""
    for i in range(1, o["n"] + 1):
        line = first_line + i - 1
        r = producer(i, o["org"], o["dni0"] + i)
        if o["kind"]:
            r = dict({"kind": o["kind"]}, **r)
        if line == o["bad"]:
            r["dni"] = "1234567"
        if line == o["dup"]:
            r["dni"] = "%08d" % o["dni0"]
        if i == 3:
            r["name"] = 'Huamán, "Chicho" Rosa'  # CSV quoting survives
        yield r


def cmd_gen_producers(args):
    for r in gen_records(gen_opts(args), 1):
        print(json.dumps(r, ensure_ascii=False))


def cmd_gen_producers_csv(args):
    o = gen_opts(args)
    w = csv.writer(sys.stdout, lineterminator="\n")
    cols = (["kind"] if o["kind"] else []) + ["org", "dni", "name", "sex",
                                              "community"]
    w.writerow(cols)
    for r in gen_records(o, 2):  # data starts on file line 2
        w.writerow([r[c] for c in cols])


# --- a minimal msgpack codec, enough for API requests and replies ----------

def mp_pack(v):
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if 0 <= v < 2**32:
            return b"\xce" + struct.pack(">I", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return bytes([0xa0 | len(b)]) + b
        return b"\xdb" + struct.pack(">I", len(b)) + b
    if isinstance(v, list):
        return (b"\xdd" + struct.pack(">I", len(v)) +
                b"".join(mp_pack(x) for x in v))
    if isinstance(v, dict):
        return (b"\xdf" + struct.pack(">I", len(v)) +
                b"".join(mp_pack(k) + mp_pack(x) for k, x in v.items()))
    raise TypeError(v)


def mp_unpack(b, i=0):
    t = b[i]
    i += 1

    def take(n):
        nonlocal i
        s = b[i:i + n]
        if len(s) != n:
            raise ValueError("short msgpack")
        i += n
        return s

    def seq(n, is_map):
        nonlocal i
        out = {} if is_map else []
        for _ in range(n):
            k, i = mp_unpack(b, i)
            if is_map:
                out[k], i = mp_unpack(b, i)
            else:
                out.append(k)
        return out

    if t < 0x80:
        return t, i
    if t >= 0xe0:
        return t - 256, i
    if 0x80 <= t <= 0x8f:
        return seq(t & 0x0f, True), i
    if 0x90 <= t <= 0x9f:
        return seq(t & 0x0f, False), i
    if 0xa0 <= t <= 0xbf:
        return take(t & 0x1f).decode(), i
    if t == 0xc0:
        return None, i
    if t in (0xc2, 0xc3):
        return t == 0xc3, i
    fixed = {0xcc: ">B", 0xcd: ">H", 0xce: ">I", 0xcf: ">Q", 0xd0: ">b",
             0xd1: ">h", 0xd2: ">i", 0xd3: ">q", 0xca: ">f", 0xcb: ">d"}
    if t in fixed:
        fmt = fixed[t]
        return struct.unpack(fmt, take(struct.calcsize(fmt)))[0], i
    lens = {0xd9: ">B", 0xda: ">H", 0xdb: ">I", 0xc4: ">B", 0xc5: ">H",
            0xc6: ">I", 0xdc: ">H", 0xdd: ">I", 0xde: ">H", 0xdf: ">I"}
    if t in lens:
        fmt = lens[t]
        n = struct.unpack(fmt, take(struct.calcsize(fmt)))[0]
        if t in (0xd9, 0xda, 0xdb):
            return take(n).decode(), i
        if t in (0xc4, 0xc5, 0xc6):
            return take(n).hex(), i
        return seq(n, t in (0xde, 0xdf)), i
    raise ValueError("msgpack type 0x%02x" % t)


def frame(body):
    return struct.pack(">I", len(body)) + body


def connect(path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_reply(s):
    """One reply frame decoded, or None at EOF."""
    hdr = recv_exact(s, 4)
    if hdr is None:
        return None
    n = struct.unpack(">I", hdr)[0]
    if n == 0 or n > 64 << 20:
        die("reply frame length %d" % n)
    body = recv_exact(s, n)
    if body is None:
        die("reply frame cut short")
    v, end = mp_unpack(body)
    if end != len(body):
        die("trailing bytes in reply")
    if not isinstance(v, dict):
        die("reply is not a map: %r" % (v,))
    return v


def send(s, data):
    """Send, tolerating a daemon that already closed the connection."""
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def expect_closed(s, what, allow_error_reply=True):
    """The daemon must close the connection (after at most one error
    reply)."""
    try:
        r = read_reply(s)
        if r is not None:
            if not allow_error_reply or r.get("ok") is not False:
                die("%s: unexpected reply %r" % (what, r))
            if not isinstance(r.get("error"), str) or not r["error"]:
                die("%s: error reply without an error text: %r" % (what, r))
            r = read_reply(s)
            if r is not None:
                die("%s: second reply %r, want the connection closed" %
                    (what, r))
    except socket.timeout:
        die("%s: connection not closed by quipud within 5 s" % what)
    except ConnectionResetError:
        pass
    s.close()


def hostile(path, org=None):
    rnd = random.Random(42)

    # 1. A partial frame, then the client goes away.
    s = connect(path)
    send(s, struct.pack(">I", 100) + b"\x85\xa1v\x01")
    s.close()

    # 2. A frame header announcing 1 GiB: refused before allocation, the
    #    connection closed.  Once with the client leaving at once, once
    #    waiting for the daemon to close.
    s = connect(path)
    send(s, struct.pack(">I", 1 << 30))
    s.close()
    s = connect(path)
    send(s, struct.pack(">I", 1 << 30) + b"\x00" * 1000)
    expect_closed(s, "1 GiB frame")

    # 3. A zero-length frame.
    s = connect(path)
    send(s, struct.pack(">I", 0))
    expect_closed(s, "zero-length frame")

    # 4. Garbage bytes: sent and left, and sent and waited on.
    s = connect(path)
    send(s, bytes(rnd.randrange(256) for _ in range(4096)))
    s.close()
    s = connect(path)
    send(s, b"\xff\xff\xff\xff" + b"GET / HTTP/1.0\r\n\r\n")
    expect_closed(s, "garbage")

    # 5. A body that is not a map, and a wrong version: an error reply,
    #    then the connection is closed.
    s = connect(path)
    send(s, frame(mp_pack([1, 2, 3])))
    expect_closed(s, "body not a map")
    s = connect(path)
    send(s, frame(mp_pack({"v": 99, "rid": 7, "op": "id"})))
    expect_closed(s, "wrong v")
    s = connect(path)
    send(s, frame(b"\x81\xa1v"))  # truncated msgpack inside a frame
    expect_closed(s, "truncated msgpack body")

    # 6. Pipelined valid requests: replies in order with their rids.
    s = connect(path)
    send(s, b"".join(frame(mp_pack({"v": 1, "rid": r, "op": "id"}))
                       for r in (11, 12, 13)))
    for r in (11, 12, 13):
        rep = read_reply(s)
        if rep is None:
            die("pipelined id: connection closed")
        if rep.get("rid") != r or rep.get("ok") is not True:
            die("pipelined id: reply %r, want rid %d ok" % (rep, r))
        key = rep.get("key")
        if not isinstance(key, str) or len(key) != 64:
            die("id reply key %r" % (key,))
    # An unknown op is refused with a reason.
    send(s, frame(mp_pack({"v": 1, "rid": 14, "op": "frobnicate"})))
    rep = read_reply(s)
    if rep is not None and (rep.get("ok") is not False or
                            not rep.get("error")):
        die("unknown op: reply %r" % (rep,))
    s.close()

    # 7. A client that sends a write and leaves before the reply.
    s = connect(path)
    if org:
        send(s, frame(mp_pack({"v": 1, "rid": 1, "op": "add",
                               "kind": "producer", "records": [
                                   {"org": org, "dni": "87654321",
                                    "name": "Cliente Apurado", "sex": "X"}]})))
    send(s, frame(mp_pack({"v": 1, "rid": 2, "op": "status"})))
    send(s, struct.pack(">I", 50) + b"\x82")
    s.close()

    # 8. Fifty connections at once, some with half a frame, all closed.
    conns = [connect(path) for _ in range(50)]
    for i, c in enumerate(conns):
        if i % 3 == 0:
            send(c, struct.pack(">I", 1000) + b"\x80" * (i + 1))
        elif i % 3 == 1:
            send(c, frame(mp_pack({"v": 1, "rid": i, "op": "id"})))
    for c in conns:
        c.close()

    # 9. Reset instead of an orderly close.
    s = connect(path)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    send(s, struct.pack(">I", 64) + b"\x80")
    s.close()

    # 10. A slow client: pipelines thousands of status requests and never
    #     reads the replies.  quipud must stop reading it (backpressure)
    #     rather than buffer without bound, and keep serving others.
    slow = connect(path, timeout=0.5)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    req = frame(mp_pack({"v": 1, "rid": 5, "op": "status"}))
    sent = 0
    try:
        for _ in range(20000):
            slow.sendall(req)
            sent += 1
    except (socket.timeout, BlockingIOError, OSError):
        pass  # its send buffer filled up: quipud stopped reading it
    if sent == 0:
        die("slow client could not send anything")
    t0 = time.time()
    s = connect(path)
    send(s, frame(mp_pack({"v": 1, "rid": 98, "op": "status"})))
    rep = read_reply(s)
    if rep is None or rep.get("ok") is not True or rep.get("rid") != 98:
        die("while a client does not read, status reply %r" % (rep,))
    if time.time() - t0 > 5:
        die("a client that does not read its replies delayed another "
            "client by %.1f s" % (time.time() - t0))
    s.close()
    slow.close()

    # 11. The daemon still serves a fresh client.
    time.sleep(0.2)
    s = connect(path)
    send(s, frame(mp_pack({"v": 1, "rid": 99, "op": "id"})))
    rep = read_reply(s)
    if rep is None or rep.get("ok") is not True or rep.get("rid") != 99:
        die("after the abuse, id reply %r" % (rep,))
    s.close()


def cmd_hostile(args):
    hostile(args[0], args[1] if len(args) > 1 else None)


def main():
    cmds = {"find": cmd_find, "same": cmd_same, "jsonl": cmd_jsonl,
            "csv": cmd_csv, "geojson": cmd_geojson,
            "gen-producers": cmd_gen_producers,
            "gen-producers-csv": cmd_gen_producers_csv,
            "pick": cmd_pick, "hostile": cmd_hostile}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        die("usage: qptool.py %s ..." % "|".join(cmds))
    cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
