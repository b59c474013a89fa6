"""``python -m shakedown.images [--rebuild] [--prune]``: build or find the images, timed."""

from __future__ import annotations

import argparse
import sys
import time

from shakedown.errors import ShakedownError
from shakedown.images.build import connect, ensure_images
from shakedown.images.prune import prune_images


def main(argv: list[str] | None = None) -> int:
    """Print one line per image and the total time; exit 1 with one line on a user error."""
    parser = argparse.ArgumentParser(prog="python -m shakedown.images", description=__doc__)
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="re-import the base from its cached rootfs and build every image without cache",
    )
    parser.add_argument(
        "--prune",
        action="store_true",
        help="then remove older shakedown images that no container uses",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()

    def log(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {line}", flush=True)

    try:
        client = connect()
        images = ensure_images(client, rebuild=args.rebuild, log=log)
        if args.prune:
            prune_images(client, images, log=log)
    except ShakedownError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for name, ref in images.refs().items():
        origin = "official" if name in images.official else "local"
        print(f"{name:<10} {ref}  ({origin})")
    print(f"ready in {time.monotonic() - started:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
