"""Print the pip requirements a Home Assistant config needs, read from HA's own wheel.

Usage: python ha_requirements.py WHEEL CONSTRAINTS_OUT DOMAIN... [--custom DIR]

Walks each domain's manifest `dependencies` (transitively) inside the wheel, plus the
manifests of custom integrations in DIR, prints their `requirements` one per line, and
writes HA's `package_constraints.txt` to CONSTRAINTS_OUT so pip pins what HA pins.
Runs on the system Python: it only needs the standard library.
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path


def _manifests(wheel: zipfile.ZipFile, custom_dir: Path | None) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for name in wheel.namelist():
        parts = name.split("/")
        if len(parts) == 4 and parts[:2] == ["homeassistant", "components"] and parts[3] == "manifest.json":
            found[parts[2]] = json.loads(wheel.read(name))
    if custom_dir is not None:
        for path in custom_dir.glob("*/manifest.json"):
            found[path.parent.name] = json.loads(path.read_text())
    return found


def requirements(wheel_path: Path, domains: list[str], custom_dir: Path | None) -> list[str]:
    """Requirements of `domains` and their transitive `dependencies`, sorted."""
    with zipfile.ZipFile(wheel_path) as wheel:
        manifests = _manifests(wheel, custom_dir)
    todo = list(domains)
    seen: set[str] = set()
    reqs: set[str] = set()
    while todo:
        domain = todo.pop()
        if domain in seen:
            continue
        seen.add(domain)
        manifest = manifests.get(domain)
        if manifest is None:
            raise SystemExit(f"unknown Home Assistant integration: {domain}")
        reqs.update(manifest.get("requirements", []))
        todo.extend(manifest.get("dependencies", []))
    return sorted(reqs)


def main(argv: list[str]) -> None:
    custom_dir = None
    if "--custom" in argv:
        i = argv.index("--custom")
        custom_dir = Path(argv[i + 1])
        argv = argv[:i] + argv[i + 2 :]
    wheel_path, constraints_out, *domains = argv
    with zipfile.ZipFile(wheel_path) as wheel:
        constraints = wheel.read("homeassistant/package_constraints.txt").decode()
    Path(constraints_out).write_text(constraints)
    print("\n".join(requirements(Path(wheel_path), domains, custom_dir)))


if __name__ == "__main__":
    main(sys.argv[1:])
