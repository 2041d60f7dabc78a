"""Write a synthetic CT study and upload it to a running Orthanc.

Prints the Orthanc study identifier on the last line of its output.
Run from the repository root: ``python scripts/load_demo.py --port 8042``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.dicom_data import (
    ct_study_uids,
    generate_ct_study,
    orthanc_id,
)
from tests.support.orthanc_server import http_request


def upload(port: int, path: Path) -> None:
    response = http_request(
        "127.0.0.1",
        port,
        "POST",
        "/instances",
        body=path.read_bytes(),
        headers={"Content-Type": "application/dicom"},
    )
    if response.status != 200:
        raise SystemExit(f"upload of {path} answered {response.status}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8042)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    files = generate_ct_study(
        args.out, args.slices, args.size, args.size, seed=args.seed
    )
    for path in files:
        upload(args.port, path)

    print(f"uploaded {len(files)} slices of {args.size}x{args.size}")
    print(orthanc_id(*ct_study_uids(args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
