"""Merge the GPU run's parts (``benchmarks/gpu/run.sh``) into ``throughput_gpu.json`` and ``throughput_gpu.md``.

Each part is a folder written by one benchmark (``throughput.json``/``.md``,
``peers_throughput.json``/``.md``, ``inference_device.json``/``.md``); a part that is missing
(timed out, skipped) is named as missing rather than left out silently.

Usage::

    python benchmarks/gpu/collect.py WORK_DIR OUT_DIR [OUT_DIR ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: Part folder -> (file stem, title in the merged report).
PARTS = {
    "throughput": ("throughput", "Default `train()` against the hand-written reference, batch 256 and 1024"),
    "peers": ("peers_throughput", "Default `train()` against scvi-tools TOTALVI"),
    "inference": ("inference_device", "Streamed latent and multi-sample imputation (get_latent, impute)"),
}


def collect(work: Path) -> tuple[dict, str]:
    """The merged JSON and markdown of the parts found under ``work``."""
    merged: dict = {"parts": {}, "missing": []}
    lines = ["# GPU run: training throughput, peers and streamed inference", "",
             "Written by `bash benchmarks/gpu/run.sh` (one call on the GPU machine); each section is one "
             "benchmark's own report.", ""]
    for folder, (stem, title) in PARTS.items():
        js, md = work / folder / f"{stem}.json", work / folder / f"{stem}.md"
        if not js.exists():
            merged["missing"].append(folder)
            lines += [f"## {title}", "", f"Missing: `{folder}` wrote no results (timed out, failed or skipped; "
                      "see run.log).", ""]
            continue
        merged["parts"][folder] = json.loads(js.read_text())
        body = md.read_text().splitlines() if md.exists() else []
        lines += [f"## {title}", "", *[("##" + b if b.startswith("#") else b) for b in body], ""]
    env = work / "environment.txt"
    if env.exists():
        merged["environment"] = env.read_text()
        lines += ["## Environment", "", "```", env.read_text().rstrip(), "```", ""]
    return merged, "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        msg = "usage: collect.py WORK_DIR OUT_DIR [OUT_DIR ...]"
        raise SystemExit(msg)
    merged, md = collect(Path(argv[0]))
    for out in map(Path, argv[1:]):
        out.mkdir(parents=True, exist_ok=True)
        (out / "throughput_gpu.json").write_text(json.dumps(merged, indent=1) + "\n")
        (out / "throughput_gpu.md").write_text(md)
        print(f"wrote {out / 'throughput_gpu.json'} and {out / 'throughput_gpu.md'}")


if __name__ == "__main__":
    main()
