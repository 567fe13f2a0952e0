"""LLM client throughput: requests/s through `LLMClient` against the loopback server with a fixed latency,
as a share of the bound concurrency / latency (what a client with no overhead of its own would reach).

    python bench/llm_throughput.py                   # 64 in flight, 0.2 s latency, 4,096 requests
    python bench/llm_throughput.py --concurrency 16 --latency 0.05 --requests 1000

The server is tests/llm_server.py (standard library, a thread per connection, kept alive) on 127.0.0.1, in a process of
its own (its threads would otherwise hold the client's GIL); each request sleeps `latency` seconds there. The
script also prints the CPU seconds the client process spent per request. The client side is the real path: the
openai SDK on aiohttp, the concurrency limit, retries (none needed), and, in the second row, the SQLite response
cache writing every answer. The peer row, measured in the same run, is a bare aiohttp loop posting the same
bodies under a semaphore (no SDK, no parsing of the reply): what this server and machine allow any Python
client. Goal: >= 0.95 of the bound at 64 in flight.

The bound is the rate of a client with no overhead: `requests` in ceil(requests / concurrency) rounds of `latency`
each (concurrency / latency when the count is a multiple of it, as the default 4,096 = 64 x 64 is; 2,000 at 64
would end on a round of 16 and cap any client at 0.977 of concurrency / latency). Each row is one new client, so
its start (connections, the first wave of requests built back to back) is counted once per row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from textbooks.llm import LLMClient, LLMConfig

TESTS = Path(__file__).resolve().parents[1] / "tests"
SERVE = """
import sys, time
sys.path.insert(0, sys.argv[1])
from llm_server import FakeLLMServer
server = FakeLLMServer(keep_alive=True).start()
server.latency_s = float(sys.argv[2])
print(server.url, flush=True)
sys.stdin.read()
print(server.max_in_flight, flush=True)
"""


def measure(url: str, concurrency: int, requests: int, cache: Path | None) -> tuple[float, float]:
    """Requests per second for `requests` distinct completions, `concurrency` in flight, and the client's CPU
    seconds per request."""
    config = LLMConfig(model="bench", base_url=url, concurrency=concurrency, cache=cache is not None,
                       cache_path=str(cache) if cache else None)
    client = LLMClient(config)
    prompts = [f"prompt {index} {time.time_ns()}" for index in range(requests)]
    started, cpu = time.perf_counter(), time.process_time()
    client.complete_many(prompts, progress=False)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert client.usage.requests == requests
    return requests / seconds, cpu / requests


def measure_bare(url: str, concurrency: int, requests: int) -> tuple[float, float]:
    """The same for a bare aiohttp loop: the ceiling of the server and the machine."""
    import aiohttp

    async def run() -> None:
        limit = asyncio.Semaphore(concurrency)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
            async def one(index: int) -> None:
                body = {"model": "bench", "prompt": f"prompt {index} {time.time_ns()}"}
                async with limit, session.post(f"{url}/completions", data=json.dumps(body),
                                               headers={"Content-Type": "application/json"}) as response:
                    await response.read()

            await asyncio.gather(*(one(index) for index in range(requests)))

    started, cpu = time.perf_counter(), time.process_time()
    asyncio.run(run())
    return requests / (time.perf_counter() - started), (time.process_time() - cpu) / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the server takes per request")
    parser.add_argument("--requests", type=int, default=4096)
    args = parser.parse_args()
    server = subprocess.Popen([sys.executable, "-c", SERVE, str(TESTS), str(args.latency)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert server.stdin is not None and server.stdout is not None
    url = server.stdout.readline().strip()
    bound = args.requests / (-(-args.requests // args.concurrency) * args.latency)
    try:
        measure(url, args.concurrency, args.concurrency, None)  # warm-up: imports, connections
        measure_bare(url, args.concurrency, args.concurrency)
        with tempfile.TemporaryDirectory() as folder:
            rows = [("no cache", measure(url, args.concurrency, args.requests, None)),
                    ("SQLite cache", measure(url, args.concurrency, args.requests, Path(folder) / "c.sqlite")),
                    ("bare aiohttp", measure_bare(url, args.concurrency, args.requests))]
    finally:
        server.stdin.close()
        most_in_flight = int(server.stdout.readline() or 0)
        server.terminate()
    assert most_in_flight <= args.concurrency, most_in_flight
    print(f"{args.concurrency} in flight, {args.latency * 1000:.0f} ms latency, {args.requests} requests: "
          f"bound {bound:.1f} req/s; most in flight at the server {most_in_flight}")
    bare = rows[-1][1][0]
    for name, (rate, cpu) in rows:
        print(f"{name:>12}: {rate:7.1f} req/s  ratio {rate / bound:.3f}  of bare aiohttp {rate / bare:.3f}  "
              f"client CPU {cpu * 1000:.2f} ms/request")


if __name__ == "__main__":
    main()
