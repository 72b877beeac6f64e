"""``python -m tests.corpus OUT_DIR``: write every file case and print the table."""

from __future__ import annotations

import sys

from tests.corpus.build import build_corpus


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.corpus OUT_DIR", file=sys.stderr)
        return 2
    for case in build_corpus(argv[0], heavy=True, paths=True):
        outcome = f"error: {case.message_contains}" if case.expected == "error" else "ok"
        print(f"{case.kind:7} {str(case.path):45} {outcome:28} {case.description}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
