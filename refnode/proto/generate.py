"""Regenerate refnode_pb2*.py from refnode.proto (needs the dev extra: grpcio-tools).

``python -m refnode.proto.generate`` writes them; ``--check`` exits 1 if the committed files
differ from a fresh generation.
"""

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTO = "refnode/proto/refnode.proto"
OUTPUTS = ("refnode_pb2.py", "refnode_pb2.pyi", "refnode_pb2_grpc.py")


def generate(out_dir: Path) -> None:
    from grpc_tools import protoc

    args = ["protoc", f"-I{ROOT}", f"--python_out={out_dir}", f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}", str(ROOT / PROTO)]
    if protoc.main(args) != 0:
        raise SystemExit(f"protoc failed on {PROTO}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    opts = parser.parse_args()
    if not opts.check:
        generate(ROOT)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        stale = [n for n in OUTPUTS
                 if not filecmp.cmp(Path(tmp) / "refnode/proto" / n, ROOT / "refnode/proto" / n,
                                    shallow=False)]
    if stale:
        print(f"stale generated code: {', '.join(stale)}; run python -m refnode.proto.generate")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
