"""A job runner for tests: behaves as told per module and attempt, else runs the real one.

Usage (as ``[executor] runner``): ``python tests/fault_runner.py FAULTS.json`` followed by the real runner's
arguments. FAULTS.json maps a module to one behaviour per attempt, e.g. ``{"barcode": ["crash", "ok"]}``:

ok            exec the real ``integration hpc run``          crash     exit 3 with a traceback-like stderr
hang          report started, then sleep (the time limit)    silent    exit 0 without any callback
invalid       report a result that does not validate         asset     report a failure blamed on the asset
device_target report a barcode result "device target"        node      report a failure blamed on the node
config        report a failure blamed on the node's configuration
{"result": R} report the module result R (a JSON object)

A module may instead map asset GUIDs to such lists (``"*"``: every other asset), e.g.
``{"barcode": {"<guid>": [{"result": {...}}], "*": ["ok"]}}``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import httpx


def main() -> None:
    faults_file, module, *rest = sys.argv[1:]
    args = dict(zip(rest[::2], rest[1::2], strict=False))
    key = args["--job-key"]
    attempt = int(key.rsplit("-", 1)[1])
    plan = json.loads(Path(faults_file).read_text()).get(module, [])
    if isinstance(plan, dict):
        plan = next((steps for name, steps in plan.items() if key.startswith(f"{name}-")), plan.get("*", []))
    fault = plan[attempt - 1] if attempt <= len(plan) else "ok"
    if fault == "ok":
        os.execv(sys.executable, [sys.executable, "-m", "integration", "hpc", "run", module, *rest])
    token = Path(args["--token-file"]).read_text().strip()
    base = f"{args['--server']}/api/v1/jobs/{key}"

    def post(what: str, body: dict[str, object]) -> None:
        httpx.post(f"{base}/{what}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    if fault == "crash":
        print("Traceback (most recent call last):\nRuntimeError: the module crashed on purpose", file=sys.stderr)
        sys.exit(3)
    if fault == "hang":
        post("started", {"host": "test", "pid": os.getpid()})
        time.sleep(3600)
    if fault == "silent":
        sys.exit(0)
    if fault == "invalid":
        post("finished", {"module_version": "9.9", "result": {"barcodes": "not a list"}})
        sys.exit(0)
    if fault in ("asset", "node", "config"):
        post("failed", {"reason": f"failed on purpose ({fault})", "kind": fault})
        sys.exit(0)
    if isinstance(fault, dict):
        post("finished", {"module_version": "1.0.0", "result": fault["result"]})
        sys.exit(0)
    if fault == "device_target":
        result = {"barcodes": ["DT-CHART-1"], "asset_subject": "device target", "MSO": False, "MOS": False,
                  "label": False, "disposable": None}  # fmt: skip
        post("finished", {"module_version": "1.0.0", "result": result})
        sys.exit(0)
    raise SystemExit(f"unknown fault {fault!r}")


if __name__ == "__main__":
    main()
