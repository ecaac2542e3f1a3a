"""Helpers of benchmarks/device/session.sh: put files in $OUT within the run tool's limits, and
turn a training run's stats.jsonl into a few markdown lines (docs/device.md).

    python benchmarks/device/pack.py put FILE OUT_DIR [NAME]     # copy, split when over 16 MiB
    python benchmarks/device/pack.py train-summary RUN/stats.jsonl [ROWS]
    python benchmarks/device/pack.py join DIR/NAME.part00        # here: parts back into NAME

The run tool returns at most 8 files of 16 MiB each (64 MiB together) from $OUT, at most two
folders down, names of letters, digits, '.', '_' and '-'. A file over ``CHUNK`` bytes is cut
into ``NAME.part00``, ``NAME.part01`` ...; ``cat NAME.part* > NAME`` (or ``join``) restores it.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

MIB = 1 << 20
CHUNK = 16 * MIB - 4096  # under the 16 MiB per file, with room to spare
MAX_FILES = 8
MAX_TOTAL = 64 * MIB
NAME_OK = re.compile(r"^[A-Za-z0-9._-]+$")


def out_files(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*") if p.is_file())


def room(out: Path) -> tuple[int, int]:
    """(files, bytes) still allowed in ``out``."""
    files = out_files(out)
    return MAX_FILES - len(files), MAX_TOTAL - sum(p.stat().st_size for p in files)


def put(src: Path, out: Path, name: str | None = None, chunk: int = CHUNK) -> list[Path]:
    """Copy ``src`` into ``out`` as ``name`` (split into parts of ``chunk`` bytes if larger).
    Raises ValueError when the name is not allowed or the files would not all come back."""
    name = name or src.name
    if not NAME_OK.match(name):
        raise ValueError(f"'{name}': the run tool returns only names of letters, digits, . _ -")
    size = src.stat().st_size
    parts = max(1, -(-size // chunk))
    files_left, bytes_left = room(out)
    if parts > files_left or size > bytes_left:
        raise ValueError(f"{name} ({size / MIB:.1f} MiB in {parts} file(s)) does not fit: "
                         f"{files_left} file(s), {bytes_left / MIB:.1f} MiB left in {out}")
    out.mkdir(parents=True, exist_ok=True)
    if parts == 1:
        target = out / name
        shutil.copyfile(src, target)
        return [target]
    written = []
    with src.open("rb") as f:
        for k in range(parts):
            target = out / f"{name}.part{k:02d}"
            target.write_bytes(f.read(chunk))
            written.append(target)
    return written


def join(first_part: Path) -> Path:
    """``NAME.part00`` (and its siblings) back into ``NAME``, next to them."""
    stem = first_part.name.rsplit(".part", 1)[0]
    parts = sorted(first_part.parent.glob(f"{stem}.part[0-9][0-9]"))
    target = first_part.parent / stem
    with target.open("wb") as f:
        for part in parts:
            f.write(part.read_bytes())
    return target


def train_summary(stats: Path, rows: int = 8) -> str:
    """The last ``rows`` training records and the last validation record, as markdown."""
    records = []
    for line in stats.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by the kill
    train = [r for r in records if r.get("kind") == "train"]
    val = [r for r in records if r.get("kind") == "val"]
    if not train:
        return "(no training records)"
    keys = ["step", "g/total", "g/identity", "g/reconstruction", "d/total",
            "amp/skipped_steps", "it_per_s", "img_per_s"]
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in train[-rows:]:
        out.append("| " + " | ".join(_cell(r.get(k)) for k in keys) + " |")
    if val:
        v = val[-1]
        out.append("")
        out.append(f"Last validation (step {v.get('step')}): id_cos_to_source "
                   f"{_cell(v.get('id_cos_to_source'))}, id_cos_to_target "
                   f"{_cell(v.get('id_cos_to_target'))}, baseline id_cos_target_source "
                   f"{_cell(v.get('id_cos_target_source'))}")
    return "\n".join(out)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    verb, args = argv[0], argv[1:]
    if verb == "put":
        for path in put(Path(args[0]), Path(args[1]), args[2] if len(args) > 2 else None):
            print(f"{path.name} {path.stat().st_size / MIB:.2f} MiB")
        return 0
    if verb == "join":
        print(join(Path(args[0])))
        return 0
    if verb == "train-summary":
        print(train_summary(Path(args[0]), int(args[1]) if len(args) > 1 else 8))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
