#!/usr/bin/python3
"""Writes the reference vectors tests/vectors/<family>.json.

Each module gen_<family>.py beside this script defines cases() returning a
list of cases built with common.case() / common.error_case(); this script
runs them all (or the families named on the command line) and writes one
JSON file per family.  Values come from PyTorch in float64:
torch.nn.functional where it has the loss, the contract's formula with
autograd where it does not.  Run with Debian's interpreter:

    /usr/bin/python3 tests/vectors/gen.py [family ...]
"""
import importlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def families():
    names = sorted(f[4:-3] for f in os.listdir(HERE)
                   if f.startswith("gen_") and f.endswith(".py"))
    wanted = sys.argv[1:]
    return [n for n in names if not wanted or n in wanted]


def main():
    for fam in families():
        mod = importlib.import_module("gen_" + fam)
        cases = mod.cases()
        path = os.path.join(HERE, fam + ".json")
        with open(path, "w") as f:
            json.dump({"generator": "tests/vectors/gen.py", "family": fam,
                       "cases": cases}, f, indent=1, allow_nan=False)
            f.write("\n")
        print("%s: %d cases -> %s" % (fam, len(cases), os.path.relpath(path)))


if __name__ == "__main__":
    main()
