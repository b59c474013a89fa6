"""The committed artifacts are exactly what the pinned solcjs makes of contracts/src."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shakedown.chain import compile as solc
from shakedown.chain.contracts import artifacts_document


@pytest.fixture(scope="module")
def fresh() -> str:
    return solc.render(solc.compile_contracts())


def test_committed_artifacts_match_a_fresh_compile(fresh: str) -> None:
    committed = solc.ARTIFACTS_PATH.read_text()
    assert committed == fresh, (
        f"{solc.ARTIFACTS_PATH} is stale; run `python -m shakedown.chain.compile`"
    )


def test_artifacts_name_the_pinned_compiler_and_every_contract(fresh: str) -> None:
    document = json.loads(fresh)
    assert document["compiler"].startswith("0.8.28+"), document["compiler"]
    assert sorted(document["contracts"]) == sorted(solc.CONTRACTS)
    for name, contract in document["contracts"].items():
        assert len(contract["deployedBytecode"]) > 2, f"{name}: empty deployed bytecode"


def test_packaged_artifacts_are_the_committed_file() -> None:
    assert artifacts_document() == json.loads(solc.ARTIFACTS_PATH.read_text())


def test_check_flags_stale_artifacts(
    tmp_path: Path,
    fresh: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(solc, "compile_contracts", lambda: json.loads(fresh))  # compile once
    current = tmp_path / "artifacts.json"
    current.write_text(fresh)
    assert solc.main(["--check", "--out", str(current)]) == 0
    current.write_text(fresh.replace('"FeeToken"', '"FeeTokenX"', 1))
    assert solc.main(["--check", "--out", str(current)]) == 1
    message = capsys.readouterr().err.strip()
    assert "stale" in message and len(message.splitlines()) == 1, message
