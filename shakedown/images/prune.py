"""Remove images left behind by earlier builds: every source change leaves a ``shakedown/node``
tag behind. Explicit only (``python -m shakedown.images --prune``): another process may be
about to start a container from a tag this one considers old."""

from __future__ import annotations

from collections.abc import Callable

import docker
import docker.errors

from shakedown.images import spec

Log = Callable[[str], None]


def prune_images(client: docker.DockerClient, keep: spec.ImageSet, log: Log = print) -> list[str]:
    """Remove shakedown-built images not in ``keep`` and not used by a container; return them.

    Example: ``prune_images(client, ensure_images(client))`` -> ``["shakedown/node:1a2b..."]``.
    """
    wanted = set(keep.refs().values()) | {spec.BASE_REF}
    removed = []
    for image in client.images.list(filters={"label": spec.LABEL_IMAGE}):
        for tag in image.tags:
            if tag in wanted:
                continue
            try:
                client.images.remove(tag, noprune=False)
                removed.append(tag)
            except docker.errors.APIError as e:  # in use (409) or already gone (404)
                if e.status_code != 404:
                    log(f"images: kept {tag}: {e.explanation}")
    if removed:
        log(f"images: removed {len(removed)} old images: {', '.join(removed)}")
    return removed
