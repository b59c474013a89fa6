"""Compile contracts/src with the pinned solcjs into refnode/contracts/artifacts.json.

The artifacts are committed so the node and the tool need neither node nor solc at run time;
``--check`` proves the committed file is what the sources compile to (CI runs it).

    python -m shakedown.chain.compile           # write the artifacts
    python -m shakedown.chain.compile --check   # exit 1 if they are stale
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from shakedown.errors import ConfigError, ShakedownError

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCES_DIR = REPO_ROOT / "contracts" / "src"
ARTIFACTS_PATH = REPO_ROOT / "refnode" / "contracts" / "artifacts.json"
SOLC_VERSION = "0.8.28"
# The contracts whose ABI and bytecode the artifacts carry (interfaces are covered by them).
CONTRACTS = (
    "DistributionManager",
    "FeeToken",
    "NodeRegistry",
    "PayerRegistry",
    "PayerReportManager",
    "RateRegistry",
)
# Pinned so a compile is a pure function of the sources. No metadata hash: comment-only edits
# then leave the bytecode alone.
SETTINGS: dict[str, Any] = {
    "evmVersion": "cancun",
    "metadata": {"bytecodeHash": "none"},
    "optimizer": {"enabled": True, "runs": 200},
    "outputSelection": {
        "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]},
    },
}
# Reads a standard-JSON input on stdin, writes {"version", "output"} on stdout.
_SOLCJS = (
    "const solc = require(process.argv[1]);"
    "let input = '';"
    "process.stdin.on('data', (d) => { input += d; });"
    "process.stdin.on('end', () => {"
    " const output = JSON.parse(solc.compile(input));"
    " process.stdout.write(JSON.stringify({version: solc.version(), output}));"
    "});"
)


def solcjs_module() -> Path:
    """The solc npm package: env SHAKEDOWN_SOLCJS, else tools/node_modules/solc."""
    override = os.environ.get("SHAKEDOWN_SOLCJS")
    return Path(override) if override else REPO_ROOT / "tools" / "node_modules" / "solc"


def standard_json_input(sources_dir: Path = SOURCES_DIR) -> dict[str, Any]:
    """Every .sol file under sources_dir, keyed "src/<relative path>" so imports resolve."""
    files = sorted(sources_dir.rglob("*.sol"))
    if not files:
        raise ConfigError(f"no Solidity sources under {sources_dir}")
    sources = {
        f"src/{path.relative_to(sources_dir).as_posix()}": {"content": path.read_text()}
        for path in files
    }
    return {"language": "Solidity", "sources": sources, "settings": SETTINGS}


def run_solcjs(standard_input: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Run solcjs under node; returns (compiler version, standard-JSON output)."""
    node = shutil.which("node")
    module = solcjs_module()
    if node is None:
        raise ConfigError("node not found on PATH; solcjs needs it (apt-get install nodejs)")
    if not (module / "package.json").exists():
        raise ConfigError(f"solcjs not found at {module}; run `npm ci` in tools/")
    proc = subprocess.run(
        [node, "-e", _SOLCJS, str(module)],
        input=json.dumps(standard_input),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-5:]
        raise ShakedownError(f"solcjs exited with {proc.returncode}: {' | '.join(tail)}")
    result = json.loads(proc.stdout)
    return result["version"], result["output"]


def compile_contracts(sources_dir: Path = SOURCES_DIR) -> dict[str, Any]:
    """Compile and return the artifacts document; errors from solc raise ShakedownError."""
    version, output = run_solcjs(standard_json_input(sources_dir))
    if not version.startswith(f"{SOLC_VERSION}+"):
        raise ConfigError(f"solcjs is {version}, expected {SOLC_VERSION}; run `npm ci` in tools/")
    problems = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if problems:
        first = problems[0].get("formattedMessage", problems[0].get("message", "?")).strip()
        raise ShakedownError(f"solc: {len(problems)} error(s); first: {first}")
    by_name = {
        name: contract
        for file_contracts in output.get("contracts", {}).values()
        for name, contract in file_contracts.items()
    }
    missing = [name for name in CONTRACTS if name not in by_name]
    if missing:
        raise ShakedownError(f"solc output lacks {', '.join(missing)}")
    contracts = {
        name: {
            "abi": by_name[name]["abi"],
            "bytecode": "0x" + by_name[name]["evm"]["bytecode"]["object"],
            "deployedBytecode": "0x" + by_name[name]["evm"]["deployedBytecode"]["object"],
        }
        for name in CONTRACTS
    }
    settings = {k: v for k, v in SETTINGS.items() if k != "outputSelection"}
    return {"compiler": version, "settings": settings, "contracts": contracts}


def render(artifacts: dict[str, Any]) -> str:
    """Stable text: sorted keys, fixed indent, trailing newline."""
    return json.dumps(artifacts, indent=1, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shakedown.chain.compile", description=__doc__)
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare the committed artifacts with a fresh compile instead of writing them",
    )
    parser.add_argument("--out", type=Path, default=ARTIFACTS_PATH, help="artifacts file")
    args = parser.parse_args(argv)
    try:
        fresh = render(compile_contracts())
    except ShakedownError as e:
        print(f"compile: {e}", file=sys.stderr)
        return 2
    if args.check:
        current = args.out.read_text() if args.out.exists() else None
        if current != fresh:
            state = "missing" if current is None else "stale"
            print(
                f"{args.out}: {state}; it differs from a fresh compile of {SOURCES_DIR}; "
                "run `python -m shakedown.chain.compile`",
                file=sys.stderr,
            )
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
