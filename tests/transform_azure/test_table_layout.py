"""A state table keeps the shard count it was created with, whatever later settings say."""

from __future__ import annotations

import pytest

from tests.contract.states import make_state
from tests.transform_azure.conftest import AzureStorage

pytestmark = pytest.mark.stack


def test_an_existing_table_keeps_its_shard_count(azure_storage: AzureStorage) -> None:
    first = azure_storage.new_store(shards=7)
    assert first.shards == 7
    ids = [f"layout-{n}" for n in range(20)]
    for conversation_id in ids:
        first.save(make_state(conversation_id), None, 1_000)
    later = azure_storage.new_store(shards=4)
    assert later.shards == 7, "the layout row wins over the setting"
    assert all(later.load(i) is not None for i in ids)
    assert sorted(later.due(1_000, 100)) == sorted(ids)
