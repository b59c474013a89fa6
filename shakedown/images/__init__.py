"""The images a testnet runs: official ones where a registry answers, else built from Debian.

``ensure_images(client)`` returns an ``ImageSet`` (node, anvil, postgres, toxiproxy refs),
building only what is missing. ``python -m shakedown.images [--rebuild]`` does the same from a
shell. See DESIGN.md section 2, "Images and binaries".
"""

from shakedown.images.build import connect, default_cache_dir, ensure_images, repo_root
from shakedown.images.prune import prune_images
from shakedown.images.spec import ImageSet

__all__ = [
    "ImageSet",
    "connect",
    "default_cache_dir",
    "ensure_images",
    "prune_images",
    "repo_root",
]
