#!/usr/bin/env python3
"""Prints every configuration key of docs/configuration.md, one per line: the keys of its
YAML blocks and the first-column keys of its tables (`a.b` gives a and b). Used by
make package-check to prove that sluice.yaml(5) names them all."""
import re
import sys

NOT_KEYS = {"true", "false", "yes", "no", "on", "off", "none", "auto", "x"}


def keys(text):
    found = set()
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        for line in block.split("\n"):
            line = re.sub(r"\"[^\"]*\"", "\"\"", line.split("#", 1)[0])
            found.update(re.findall(r"(?:^|[{,\s-])([a-z_][a-z0-9_]*)\s*:(?:\s|$)", line))
    for row in re.findall(r"^\| (`[^|]*`[^|]*)\|", text, re.M):
        for cell in re.findall(r"`([a-z_][a-z0-9_.]*)(?:: [^`]*)?`", row):
            found.update(p for p in cell.split(".") if p)
    return sorted(k for k in found if k not in NOT_KEYS)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print("\n".join(keys(f.read())))
