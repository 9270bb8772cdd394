"""Where the shared conformance corpus lives, and small loaders for it.

The corpus (../shared/corpus, beside the project) is other people's material; tests read it
in place and never copy it. Where the folder is absent the tests that need it are skipped
with that reason (CI always has it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parent.parent
SHARED = PROJECT.parent / "shared"
CORPUS = SHARED / "corpus"

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no corpus at {CORPUS}")


def rfc_vectors() -> list[dict[str, Any]]:
    if not CORPUS.is_dir():
        return []
    return json.loads((CORPUS / "rfc-vectors.json").read_text())["vectors"]


def fuzz_seeds() -> list[Path]:
    folder = CORPUS / "fuzz"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []


def corpus_pcaps() -> list[Path]:
    folder = CORPUS / "pcaps"
    return sorted(folder.rglob("*.pcap")) if folder.is_dir() else []
