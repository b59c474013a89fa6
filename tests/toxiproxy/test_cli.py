"""``python -m shakedown.toxiproxy``: toxiproxy-server's flags, single or double dash.

Scripts written for toxiproxy-server (``-host 0.0.0.0 -port 8474 -config f.json``) must run our
server unchanged; the process tests start it for real on loopback and stop it with SIGTERM.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from shakedown.toxiproxy.__main__ import parse_args

TIMEOUT = 20.0
SERVER = [sys.executable, "-m", "shakedown.toxiproxy"]


@pytest.mark.parametrize(
    "argv",
    [
        ["-host", "0.0.0.0", "-port", "9", "-config", "p.json", "-seed", "7",
         "-proxy-metrics", "-runtime-metrics"],
        ["--host", "0.0.0.0", "--port", "9", "--config", "p.json", "--seed", "7",
         "--proxy-metrics", "--runtime-metrics"],
        ["-host=0.0.0.0", "-port=9", "-config=p.json", "-seed=7",
         "-proxy-metrics", "-runtime-metrics"],
    ],
)
def test_single_and_double_dash_flags_mean_the_same(argv):
    args = parse_args(argv)
    assert (args.host, args.port, args.config, args.seed) == ("0.0.0.0", 9, Path("p.json"), 7)
    assert args.proxy_metrics and args.runtime_metrics and not args.version


@pytest.mark.parametrize("flag", ["-version", "--version"])
def test_version_flag_prints_toxiproxy_line_and_says_ours(flag):
    done = subprocess.run([*SERVER, flag], capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()
    assert words[:3] == ["toxiproxy-server", "version", "2.12.0"], done.stdout
    assert "shakedown" in done.stdout, done.stdout


def test_bad_flag_is_one_line_and_exit_2():
    done = subprocess.run([*SERVER, "-colour"], capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 2, done
    assert "-colour" in done.stderr and "Traceback" not in done.stderr


def test_server_runs_with_toxiproxy_style_flags(tmp_path):
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps(
        [{"name": "db", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}]
    ))
    argv = [*SERVER, "-host", "127.0.0.1", "-port", "0", "-config", str(config), "-seed", "3",
            "-proxy-metrics", "-runtime-metrics"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            line = proc.stdout.readline() if proc.stdout else ""
            assert "listening on http://" in line, (line, proc.stderr and proc.stderr.read())
            url = line.rsplit(" ", 1)[1].strip()
            with urllib.request.urlopen(f"{url}/proxies", timeout=TIMEOUT) as resp:
                assert list(json.load(resp)) == ["db"]
            with urllib.request.urlopen(f"{url}/metrics", timeout=TIMEOUT) as resp:
                assert b"process_cpu_seconds_total" in resp.read()
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(TIMEOUT) == 0
