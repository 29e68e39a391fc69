#!/usr/bin/env python3
"""Cycles between the top-level modules of each crate (issue 10's "no import cycle").

A module refers to another when its code (not its comments, strings or
`#[cfg(test)]` part) names `crate::other` or, in a top-level file, `super::other`.
Prints, per crate, every strongly connected group of modules and the edges inside
it with the file that makes each; exits 1 when any crate has one.

    scripts/module-cycles.py                 # bench loadgen servers proto
    scripts/module-cycles.py loadgen
"""
import glob
import os
import re
import sys


def code(text):
    text = re.split(r"#\[cfg\(test\)\]", text)[0]
    lines = []
    for line in text.split("\n"):
        line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
        lines.append(re.sub(r"//.*", "", line))
    return "\n".join(lines)


def graph(crate):
    src = os.path.join(crate, "src")
    edges, why = {}, {}
    for path in glob.glob(os.path.join(src, "**", "*.rs"), recursive=True):
        rel = os.path.relpath(path, src)
        top = rel.split(os.sep)[0].removesuffix(".rs")
        if top in ("lib", "main"):
            continue
        edges.setdefault(top, set())
        with open(path, encoding="utf-8") as f:
            text = code(f.read())
        refs = re.findall(r"crate::(\w+)", text)
        if os.sep not in rel:
            refs += re.findall(r"\bsuper::(\w+)", text)
        for other in refs:
            if other != top:
                edges[top].add(other)
                why.setdefault((top, other), rel)
    return {k: {v for v in vs if v in edges} for k, vs in edges.items()}, why


def groups(g):
    """Tarjan's strongly connected components with more than one module."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10_000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def main():
    crates = sys.argv[1:] or ["bench", "loadgen", "servers", "proto"]
    any_cycle = False
    for crate in crates:
        g, why = graph(crate)
        found = groups(g)
        print(f"{crate}: {len(found)} cycle group(s)")
        for comp in found:
            any_cycle = True
            print("  " + ", ".join(comp))
            for a in comp:
                for b in sorted(g[a] & set(comp)):
                    print(f"    {a} -> {b} ({why[(a, b)]})")
    return 1 if any_cycle else 0


if __name__ == "__main__":
    sys.exit(main())
