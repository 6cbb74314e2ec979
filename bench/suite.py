"""The benchmark suite declared in bench/suite.toml: list it, run entries, regenerate the docs.

    python bench/suite.py --list                 entries and studies, with their outputs
    python bench/suite.py run NAME... [--model M] [--dry-run] [--no-report]
    python bench/suite.py run                    every entry that is neither long nor needs a GPU
    python bench/suite.py run --all              every entry but the GPU ones (hours)
    python bench/suite.py report                 README.md and docs/ from the committed JSON, with plots
    python bench/suite.py check                  exit 1 where a generated block is not what the JSON gives

Commands run from the repository root with this interpreter's bin folder first on PATH, so
`.venv/bin/python bench/suite.py …` runs the venv's `bbcodec` and `python`. After a run, the
README's headline and the docs' result blocks are regenerated (bench/report.py).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "bench" / "suite.toml"


def manifest() -> dict:
    """{"bench": [entry, ...], "study": [entry, ...]} from bench/suite.toml."""
    m = tomllib.loads(MANIFEST.read_text())
    return {"bench": m.get("bench", []), "study": m.get("study", [])}


def study_folder(name: str) -> str:
    """The folder of a [[study]] entry, relative to the repository root."""
    return next(s["folder"] for s in manifest()["study"] if s["name"] == name)


def commands(entry: dict, model: str | None = None) -> list[str]:
    """The entry's bash lines with {model} filled in (`model` overrides the manifest's)."""
    if model and not any("{model}" in c for c in entry["commands"]):
        raise SystemExit(f"{entry['name']}: its commands take no model (they code with: {entry['model']})")
    return [c.replace("{model}", model or entry["model"]) for c in entry["commands"]]


def selected(names: list[str], all_: bool) -> list[dict]:
    entries = manifest()["bench"]
    if names:
        known = {e["name"]: e for e in entries}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise SystemExit(f"unknown entries: {', '.join(unknown)} (python bench/suite.py --list)")
        return [known[n] for n in names]
    return [e for e in entries if not e.get("needs") and (all_ or not e["long"])]


def listing() -> str:
    m = manifest()
    rows = []
    for e in m["bench"]:
        flags = ", ".join(f for f in ("long" if e["long"] else "", e.get("needs", "")) if f)
        rows.append(f"{e['name']:20} {e['title']}\n{'':20} model: {e['model']}; data: {e['dataset']}; "
                    f"{e['cpu']}{f' ({flags})' if flags else ''}\n{'':20} -> {', '.join(e['outputs'])}")
    rows.append("\nstudies (archived, not rerun):")
    for s in m["study"]:
        rows.append(f"{s['name']:20} {s['title']}\n{'':20} {s['folder']}/")
    return "\n".join(rows)


def run(entries: list[dict], model: str | None, dry_run: bool) -> None:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    for e in entries:
        for cmd in commands(e, model):
            print(f"[{e['name']}] {cmd}", flush=True)
            if not dry_run:
                subprocess.run(["bash", "-euo", "pipefail", "-c", cmd], cwd=ROOT, env=env, check=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--list", action="store_true", help="list the entries and studies")
    sub = ap.add_subparsers(dest="what")
    r = sub.add_parser("run", help="run entries, then regenerate the docs")
    r.add_argument("names", nargs="*")
    r.add_argument("--all", action="store_true", help="long entries too (hours)")
    r.add_argument("--model", default=None, help="code with this model instead of the entry's")
    r.add_argument("--dry-run", action="store_true", help="print the commands only")
    r.add_argument("--no-report", action="store_true", help="leave README.md and docs/ as they are")
    sub.add_parser("report", help="regenerate README.md and docs/ (and the plots) from the committed JSON")
    sub.add_parser("check", help="exit 1 where a generated block differs from what the JSON gives")
    a = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT / "bench"))
    if a.list:
        print(listing())
        return 0
    if a.what == "run":
        try:
            run(selected(a.names, a.all), a.model, a.dry_run)
        except subprocess.CalledProcessError as e:
            print(f"error: exit status {e.returncode}", file=sys.stderr)
            return 1
        if a.dry_run or a.no_report:
            return 0
    if a.what in ("run", "report"):
        import report
        report.main()
        return 0
    if a.what == "check":
        import report
        stale = report.stale()
        for path in stale:
            print(f"{path}: generated block differs (python bench/suite.py report)", file=sys.stderr)
        return 1 if stale else 0
    ap.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
