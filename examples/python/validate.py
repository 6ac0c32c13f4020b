#!/usr/bin/env python3
"""Checks envelopes (one JSON document a line on stdin) against docs/envelope.schema.json.

    python validate.py docs/envelope.schema.json < envelopes.jsonl

Prints each envelope that does not conform with the reasons, and exits 1 if any did; prints
the number checked otherwise. Numbers are read as Decimals, as a consumer should.
"""

import json
import sys
from decimal import Decimal

import jsonschema


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        schema = json.load(f)
    validator = jsonschema.Draft202012Validator(schema)
    checked = failed = 0
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        envelope = json.loads(line, parse_float=Decimal)
        checked += 1
        errors = sorted(validator.iter_errors(envelope), key=lambda e: list(e.path))
        if errors:
            failed += 1
            for error in errors:
                path = "/".join(str(p) for p in error.path) or "(root)"
                print(f"line {number}: {path}: {error.message}", file=sys.stderr)
    print(f"{checked} envelopes checked, {failed} invalid")
    return 1 if failed or not checked else 0


if __name__ == "__main__":
    sys.exit(main())
