#!/usr/bin/env python3
"""Fails when the modules of a crate import each other in a cycle.

Reads every `crate::NAME` reference (in `use` lines and in paths) of the crate's
src/*.rs (src/NAME/… counts as module NAME), builds the graph module → modules it names,
and prints every strongly connected component of more than one module. Comments are
ignored. Usage: check_import_cycles.py [crate_src_dir ...] (default: every crates/*/src,
as scripts/test.sh runs it).
"""
import re
import sys
from pathlib import Path

REFERENCE = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
# `use crate::{a, b::c}`: the names inside the braces after `crate::`.
GROUPED = re.compile(r"\bcrate::\{([^}]*)\}", re.S)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def module_of(src, path):
    rel = path.relative_to(src)
    name = rel.parts[0]
    return name[:-3] if name.endswith(".rs") else name


def graph(src):
    edges = {}
    for path in sorted(src.rglob("*.rs")):
        module = module_of(src, path)
        if module in ("lib", "main"):
            continue
        text = strip_comments(path.read_text())
        names = set(REFERENCE.findall(text))
        for group in GROUPED.findall(text):
            names.update(re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group))
        edges.setdefault(module, set()).update(n for n in names if n != module)
    modules = set(edges)
    return {m: {n for n in targets if n in modules} for m, targets in edges.items()}


def cycles(edges):
    """Tarjan's strongly connected components with more than one module."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main(dirs):
    failed = False
    for d in dirs or sorted(str(p) for p in Path("crates").glob("*/src")):
        edges = graph(Path(d))
        for component in cycles(edges):
            failed = True
            inside = set(component)
            print(f"{d}: import cycle among {len(component)} modules: {', '.join(component)}")
            for m in component:
                print(f"  {m} -> {', '.join(sorted(edges[m] & inside))}")
    if failed:
        print("break the cycle: move what the lower module needs below it (see docs/architecture.md)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
