#!/usr/bin/env python3
"""The bulk checker the ops blogs teach: aiohttp, a semaphore and gather().

usage: peer_aiohttp.py LIST CONCURRENCY PER_HOST TIMEOUT_S [insecure]
Prints one "URL<TAB>VERDICT" line per target once all are done; VERDICT is ok, status,
rate_limited, timeout, dns, connect or other (the names upcheck uses for error_kind).
With "insecure", TLS certificates are not verified (as -k).
"""
import asyncio
import sys

import aiohttp


async def check(session, semaphore, url):
    async with semaphore:
        async with session.get(url, allow_redirects=True) as response:
            await response.read()
            return response.status


def verdict(outcome):
    if isinstance(outcome, int):
        if 200 <= outcome <= 399:
            return "ok"
        return "rate_limited" if outcome == 429 else "status"
    if isinstance(outcome, asyncio.TimeoutError):
        return "timeout"
    if isinstance(outcome, aiohttp.ClientConnectorDNSError):
        return "dns"
    if isinstance(outcome, aiohttp.ClientConnectorError):
        return "connect"
    return "other"


async def main(path, concurrency, per_host, timeout_s, insecure):
    with open(path) as listing:
        urls = [line.strip() for line in listing if line.strip()]
    semaphore = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=per_host,
                                     ssl=False if insecure else True)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = [check(session, semaphore, url) for url in urls]
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    out = sys.stdout
    for url, outcome in zip(urls, outcomes):
        out.write(f"{url}\t{verdict(outcome)}\n")


if __name__ == "__main__":
    list_path, c, per_host, t = sys.argv[1:5]
    asyncio.run(main(list_path, int(c), int(per_host), float(t), sys.argv[5:] == ["insecure"]))
