#!/usr/bin/python3
"""`make layers`: every #include of one module by another must be an edge
the table under "## Layers" in docs/architecture.md allows. Prints each
edge that is not, with the file and line, and exits 1 if there is any."""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def allowed_edges():
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("\n## Layers", 1)[1].split("\n## ", 1)[0]
    edges = {}
    for row in re.findall(r"^\| `([a-z_.]+)` \| ([^|]*) \|", section, re.M):
        module, targets = row
        edges[module] = set(re.findall(r"`([a-z_]+)`", targets))
    return edges


def module_of(path):
    parts = path.relative_to(ROOT / "src").parts
    return parts[0]  # "main.c" for src/main.c


def main():
    edges = allowed_edges()
    bad = []
    for path in sorted((ROOT / "src").rglob("*.[ch]")):
        mod = module_of(path)
        if mod not in edges:
            bad.append(f"{path.relative_to(ROOT)}: module {mod} is not in the layers table")
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = re.match(r'\s*#\s*include\s+"([a-z_]+)/', line)
            if m and m.group(1) != mod and m.group(1) not in edges[mod]:
                bad.append(f"{path.relative_to(ROOT)}:{n}: {mod} may not include {m.group(1)} "
                           f"({line.strip()})")
    for b in bad:
        print(b)
    print(f"layers: {len(bad)} include(s) outside the table" if bad else "layers: ok")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
