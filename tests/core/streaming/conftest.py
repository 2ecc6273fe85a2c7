from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
DEMO_CONTRACT = REPO / "contracts" / "demo_streaming_encoder.contract.json"


@pytest.fixture
def demo_contract_doc() -> dict:
    return json.loads(DEMO_CONTRACT.read_text())
