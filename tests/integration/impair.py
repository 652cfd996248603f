#!/usr/bin/env python3
"""impair.py - a TCP relay that behaves like a poor rural link, for tests
where the kernel has no netem qdisc.

    impair.py LISTEN_HOST:PORT TARGET_HOST:PORT RATE_KBIT DELAY_MS LOSS_PCT

Each direction is limited to RATE_KBIT, every byte arrives DELAY_MS after it
was sent (one way), and each 1460-byte segment is "lost" with probability
LOSS_PCT/100: like TCP, the stream then stalls for a retransmission timeout
(max(1 s, 2 x RTT)) before that segment and everything after it arrive.
SIGUSR1 takes the link down (every relayed connection is reset, new ones are
refused) and SIGUSR2 brings it up again.  SIGTERM stops the relay.
Standard library only; binds only the address it is given.
"""
import asyncio
import random
import signal
import socket
import struct
import sys

SEG = 1460


class Link:
    def __init__(self, rate_kbit, delay_ms, loss_pct):
        self.rate = rate_kbit * 1000 / 8.0  # bytes per second
        self.delay = delay_ms / 1000.0
        self.loss = loss_pct / 100.0
        self.rto = max(1.0, 4 * self.delay)
        self.up = True
        self.conns = set()
        self.rnd = random.Random(4242)


async def pump(link, reader, writer, conn):
    loop = asyncio.get_running_loop()
    ready = loop.time()  # when the last byte finished serialising
    queue = asyncio.Queue()

    async def deliver():
        while True:
            item = await queue.get()
            if item is None:
                break
            at, data = item
            wait = at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if writer.is_closing():
                break
            writer.write(data)
            await writer.drain()
        writer.close()

    task = asyncio.ensure_future(deliver())
    try:
        while True:
            data = await reader.read(SEG)
            if not data:
                break
            now = loop.time()
            start = max(now, ready)
            ready = start + len(data) / link.rate
            if link.rnd.random() < link.loss:
                ready += link.rto  # a lost segment holds up the stream
            queue.put_nowait((ready + link.delay, data))
            # Back-pressure: do not read far ahead of the serialised link.
            if ready - now > 2.0:
                await asyncio.sleep(ready - now - 2.0)
    except (ConnectionError, OSError):
        pass
    queue.put_nowait(None)
    try:
        await task
    except (ConnectionError, OSError, asyncio.CancelledError):
        pass


async def handle(link, target, creader, cwriter):
    if not link.up:
        reset(cwriter)
        return
    host, port = target
    try:
        treader, twriter = await asyncio.open_connection(host, port)
    except OSError:
        reset(cwriter)
        return
    conn = (cwriter, twriter)
    link.conns.add(conn)
    try:
        await asyncio.gather(pump(link, creader, twriter, conn),
                             pump(link, treader, cwriter, conn))
    except (ConnectionError, OSError, asyncio.CancelledError):
        pass
    finally:
        link.conns.discard(conn)


def reset(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.close()


def split(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


async def main():
    lhost, lport = split(sys.argv[1])
    target = split(sys.argv[2])
    link = Link(float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    loop = asyncio.get_running_loop()
    stop = loop.create_future()

    def down():
        link.up = False
        for conn in list(link.conns):
            for w in conn:
                reset(w)

    def up():
        link.up = True

    loop.add_signal_handler(signal.SIGUSR1, down)
    loop.add_signal_handler(signal.SIGUSR2, up)
    loop.add_signal_handler(signal.SIGTERM, lambda: stop.done() or stop.set_result(0))
    server = await asyncio.start_server(
        lambda r, w: handle(link, target, r, w), lhost, lport)
    print("ready", flush=True)
    await stop
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
