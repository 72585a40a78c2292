#!/usr/bin/env python3
"""Peak RSS of a creditlink process under N slow, unauthenticated uploads (loopback only, bounded).

    benches/edge/slow_uploads.py BIN [--connections 1000] [--seconds 30] [--body-bytes 1048576]

Starts `BIN sandbox` (daemon + simulated org in one process) on a free loopback port, opens N connections
that each send `POST /api/v1/report-requests` with `Authorization: Bearer junk` and a declared 1 MiB body,
then send --chunk-bytes per second (1 KiB: slow uploads; 1048576: the whole body at once), for at most
--seconds. Samples the process's RSS every 0.5 s and prints the
baseline, the peak, how many connections got an answer (and which statuses), and how many were closed.
Everything is bounded in count and time; the sandbox is killed at the end.
"""
import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def uploader(port, body_bytes, chunk_bytes, deadline, results):
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
    except Exception:
        results["connect_failed"] = results.get("connect_failed", 0) + 1
        return
    head = (
        "POST /api/v1/report-requests HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer junk\r\n"
        f"Content-Type: application/json\r\nContent-Length: {body_bytes}\r\n\r\n"
    )
    sent = 0
    status = None
    try:
        writer.write(head.encode())
        await writer.drain()
        while time.monotonic() < deadline and sent < body_bytes:
            chunk = b" " * min(chunk_bytes, body_bytes - sent)
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
            try:
                line = await asyncio.wait_for(reader.readline(), 1.0)
            except asyncio.TimeoutError:
                continue
            if not line:
                break
            status = line.decode(errors="replace").split(" ")[1] if line.startswith(b"HTTP/") else "?"
            break
    except (ConnectionError, OSError):
        pass
    finally:
        key = f"status_{status}" if status else "no_answer"
        results[key] = results.get(key, 0) + 1
        writer.close()


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("bin")
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--body-bytes", type=int, default=1 << 20)
    p.add_argument("--chunk-bytes", type=int, default=1024,
                   help="bytes sent per second per connection (the body size sends it all at once)")
    a = p.parse_args()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    work = tempfile.mkdtemp()
    log = open(os.path.join(work, "sandbox.log"), "w")
    proc = subprocess.Popen([a.bin, "sandbox", "--data-dir", os.path.join(work, "data"),
                             "--listen", f"127.0.0.1:{port}"], stdout=log, stderr=log)
    try:
        for _ in range(240):
            try:
                with socket.create_connection(("127.0.0.1", port), 1) as c:
                    c.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if c.recv(64).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                pass
            time.sleep(0.5)
        await asyncio.sleep(2)
        base = rss_mib(proc.pid)
        peak = base
        results = {}
        deadline = time.monotonic() + a.seconds
        tasks = [asyncio.create_task(uploader(port, a.body_bytes, a.chunk_bytes, deadline, results))
                 for _ in range(a.connections)]
        while time.monotonic() < deadline and not all(t.done() for t in tasks):
            peak = max(peak, rss_mib(proc.pid))
            await asyncio.sleep(0.5)
        await asyncio.gather(*tasks)
        peak = max(peak, rss_mib(proc.pid))
        await asyncio.sleep(2)
        after = rss_mib(proc.pid)
        print(f"connections={a.connections} seconds={a.seconds} body_bytes={a.body_bytes} chunk_bytes={a.chunk_bytes}")
        print(f"rss_mib baseline={base:.0f} peak={peak:.0f} after={after:.0f}")
        print("outcomes", dict(sorted(results.items())))
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    asyncio.run(main())
