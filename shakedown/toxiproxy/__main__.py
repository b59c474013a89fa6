"""``python -m shakedown.toxiproxy [-host H] [-port P] [-config FILE] [-seed N] [-version]
[-proxy-metrics] [-runtime-metrics]``: toxiproxy-server's flags, with one dash or two.

Where we differ on purpose: the API listens on 127.0.0.1 unless told (toxiproxy: localhost);
a ``-config`` that does not load stops the server with one line and exit 1 (toxiproxy logs it
and serves on without those proxies); ``-version`` adds who we are after toxiproxy's words.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import signal
import sys
from pathlib import Path

from shakedown.toxiproxy.api import SERVER, VERSION
from shakedown.toxiproxy.server import ToxiproxyServer, new_loop


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Options named like toxiproxy-server's (Go's flag: ``-host``, ``--host``, ``-host=H``)."""
    parser = argparse.ArgumentParser(
        prog="python -m shakedown.toxiproxy",
        description="shakedown's toxiproxy-compatible server (same HTTP API and toxics).",
        allow_abbrev=False,  # Go's flag package takes no abbreviations
    )
    parser.add_argument("-host", "--host", default="127.0.0.1",
                        help="API address (default 127.0.0.1)")
    parser.add_argument("-port", "--port", type=int, default=8474,
                        help="API port; 0 picks a free one")
    parser.add_argument("-config", "--config", type=Path,
                        help="JSON list of proxies to create at start")
    parser.add_argument("-seed", "--seed", type=int,
                        help="seed for the toxics' randomness (toxicity, jitter, slicer)")
    parser.add_argument("-proxy-metrics", "--proxy-metrics", action="store_true",
                        help="serve toxiproxy's byte counters on /metrics")
    parser.add_argument("-runtime-metrics", "--runtime-metrics", action="store_true",
                        help="serve this process's metrics on /metrics")
    parser.add_argument("-version", "--version", action="store_true",
                        help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log proxies and clients")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    """Start the API, populate from --config, announce the URL on stdout, serve."""
    server = ToxiproxyServer(
        args.host, args.port,
        proxy_metrics=args.proxy_metrics, runtime_metrics=args.runtime_metrics,
    )
    await server.start()
    if args.config is not None:
        count = await server.populate_file(args.config)
        logging.getLogger(__name__).info("populated %d proxies from %s", count, args.config)
    print(f"shakedown toxiproxy listening on {server.url}", flush=True)
    task = asyncio.current_task()
    if task is not None:  # SIGTERM (docker stop, systemd) stops proxies cleanly, exit 0
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await server.serve_forever()
    except asyncio.CancelledError:
        pass


def main(argv: list[str] | None = None) -> int:
    """Entry point; errors a user can cause print one line and exit 1 (bad flags: 2)."""
    args = parse_args(argv)
    if args.version:
        print(f"toxiproxy-server version {VERSION} ({SERVER}, toxiproxy-compatible)")
        return 0
    if args.seed is not None:
        random.seed(args.seed)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        with asyncio.Runner(loop_factory=new_loop) as runner:
            runner.run(run(args))
    except KeyboardInterrupt:
        return 0
    except (OSError, ValueError) as e:
        print(f"toxiproxy: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
