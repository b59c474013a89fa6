"""``run_pyinfra`` runs hosts at once (``--no-wait``) and still sees a failed operation: pyinfra
3.10 then exits 0, so the runner reads pyinfra's results. Real pyinfra on ``@local``."""

from __future__ import annotations

from pathlib import Path

import pytest

from shakedown.deploy.runner import DeployFailed, run_pyinfra


def _deploy(tmp_path: Path, body: str) -> tuple[Path, str]:
    inventory = tmp_path / "inventory.py"
    inventory.write_text("hosts = ['@local']\n")
    script = tmp_path / "deploy.py"
    script.write_text("from pyinfra.operations import server\n" + body)
    return inventory, str(script)  # an absolute script path replaces deploy/'s


def test_a_failed_operation_fails_the_run_naming_it_and_its_error(tmp_path: Path) -> None:
    inventory, script = _deploy(tmp_path, (
        "server.shell(name='first', commands=['true'])\n"
        "server.shell(name='list a missing dir', commands=['ls /nonexistent-sd-dir'])\n"
        "server.shell(name='after', commands=['true'])\n"))
    with pytest.raises(DeployFailed, match=r"^pyinfra .* failed: list a missing dir: ls: "
                                           r"cannot access '/nonexistent-sd-dir'"):
        run_pyinfra(inventory, script, verbose=False)


def test_a_clean_run_gives_the_summary(tmp_path: Path) -> None:
    inventory, script = _deploy(tmp_path, "server.shell(name='one', commands=['true'])\n")
    assert run_pyinfra(inventory, script, verbose=False) == "1 operations: 1 changed, 0 unchanged"
