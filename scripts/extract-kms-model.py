#!/usr/bin/env python3
"""Extract the input constraints of the AWS KMS API model into service/model/kms-model.json.

Reads botocore's `kms/2014-11-01/service-2.json` (install botocore from PyPI) and keeps only the
facts the server validates against: operation names with their input shape, and for each shape its
type, required members, member shapes, lengths, ranges, enums and patterns. Documentation is dropped.

Usage: python3 scripts/extract-kms-model.py [path/to/service-2.json[.gz]]
"""
import gzip
import json
import os
import sys


def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return json.load(f)


def default_path():
    import botocore  # noqa: PLC0415

    base = os.path.join(os.path.dirname(botocore.__file__), "data", "kms", "2014-11-01")
    for name in ("service-2.json.gz", "service-2.json"):
        if os.path.exists(os.path.join(base, name)):
            return os.path.join(base, name)
    raise SystemExit("botocore has no KMS model")


def main():
    model = load(sys.argv[1] if len(sys.argv) > 1 else default_path())
    keep = ("type", "required", "min", "max", "enum", "pattern")
    shapes = {}
    for name, shape in model["shapes"].items():
        out = {k: shape[k] for k in keep if k in shape}
        if shape.get("exception"):
            out["exception"] = True
        if "members" in shape:
            out["members"] = {m: v["shape"] for m, v in shape["members"].items()}
        for part in ("member", "key", "value"):
            if part in shape:
                out[part] = shape[part]["shape"]
        shapes[name] = out
    operations = {
        name: {"input": op.get("input", {}).get("shape"), "output": op.get("output", {}).get("shape")}
        for name, op in model["operations"].items()
    }
    result = {
        "source": "botocore kms 2014-11-01 service model (constraints only)",
        "targetPrefix": model["metadata"]["targetPrefix"],
        "operations": operations,
        "shapes": shapes,
    }
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out_path = os.path.join(root, "service", "model", "kms-model.json")
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {out_path}: {len(operations)} operations, {len(shapes)} shapes")


if __name__ == "__main__":
    main()
