"""Is an image registry reachable? One cheap probe through the engine, cached per process.

The probe asks the engine for the manifest of ``postgres:15`` (``GET /distribution/...``):
nothing is downloaded, the engine's own proxy and mirror settings apply, and with no
network it fails in milliseconds (DNS) or after a short timeout.
``SHAKEDOWN_IMAGE_SOURCE=registry|local`` skips the probe.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import docker
import docker.errors
import requests

from shakedown.errors import ConfigError
from shakedown.images import spec

Log = Callable[[str], None]

PROBE_REF = spec.OFFICIAL_POSTGRES
PROBE_TIMEOUT_S = 3.0
ENV_SOURCE = "SHAKEDOWN_IMAGE_SOURCE"

_answer: tuple[spec.Source, str] | None = None


def choose_source(client: docker.DockerClient) -> tuple[spec.Source, str]:
    """``("registry"|"local", why)``: from the environment, else from the probe (cached)."""
    global _answer
    forced = os.environ.get(ENV_SOURCE, "auto").strip().lower()
    if forced in ("registry", "local"):
        return forced, f"{ENV_SOURCE}={forced}"  # type: ignore[return-value]
    if forced not in ("", "auto"):
        raise ConfigError(f"{ENV_SOURCE}={forced!r}: expected auto, registry or local")
    if _answer is None:
        _answer = _probe(client)
    return _answer


def _probe(client: docker.DockerClient) -> tuple[spec.Source, str]:
    """Ask the engine to resolve PROBE_REF at its registry, with a short timeout."""
    api = client.api
    saved = api.timeout
    api.timeout = PROBE_TIMEOUT_S
    try:
        api.inspect_distribution(PROBE_REF)
        return "registry", f"the engine resolved {PROBE_REF}"
    except docker.errors.APIError as e:
        return "local", f"the engine cannot resolve {PROBE_REF}: {_short(e.explanation or e)}"
    except requests.exceptions.RequestException as e:
        return "local", f"no answer about {PROBE_REF} within {PROBE_TIMEOUT_S:.0f} s ({e})"
    finally:
        api.timeout = saved


def pull(client: docker.DockerClient, ref: str, log: Log) -> bool:
    """Make sure ``ref`` is present, pulling it if needed; False when the pull fails."""
    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        pass
    log(f"images: pulling {ref}")
    try:
        client.images.pull(ref)
        return True
    except (docker.errors.APIError, requests.exceptions.RequestException) as e:
        why = _short(getattr(e, "explanation", None) or e)
        log(f"images: pull of {ref} failed ({why}); building it locally instead")
        return False


def _short(e: object) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 160 else text[:157] + "..."
