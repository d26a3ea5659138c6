"""The contract of the escalation state store (services.escalation.store.StateStore): one base
class of tests, run against the fake (tests/unit/escalation/test_store_contract.py) and,
marked kafka, against the faust table on its changelog on the real broker
(tests/integration/escalation/test_adapters.py). A subclass says how to make a store and
what a restarted worker would recover from its changelog."""

from __future__ import annotations

import uuid


def new_key() -> bytes:
    return str(uuid.uuid4()).encode()


class StateStoreContract:
    async def make_store(self):
        raise NotImplementedError

    async def recovered(self, store) -> dict[bytes, tuple[bytes, int]]:
        """What a restarted worker rebuilds from the store's changelog: key -> (state, partition)."""
        raise NotImplementedError

    async def test_an_incident_never_written_is_not_found(self):
        store = await self.make_store()
        key = new_key()
        assert store.get(key) is None
        assert key not in dict(store.items()) and key not in await self.recovered(store)

    async def test_written_states_are_found_and_on_the_changelog_at_their_partition(self):
        store = await self.make_store()
        first, second = new_key(), new_key()
        before = len(store)
        await store.write([(first, b'{"v": 1}'), (second, b'{"v": 2}')], 4)
        assert (store.get(first), dict(store.items())[second], len(store)) == (b'{"v": 1}', b'{"v": 2}', before + 2)
        recovered = await self.recovered(store)
        assert (recovered[first], recovered[second]) == ((b'{"v": 1}', 4), (b'{"v": 2}', 4))

    async def test_a_later_write_replaces_the_state_live_and_recovered(self):
        store = await self.make_store()
        key = new_key()
        await store.write([(key, b'{"v": 1}')], 2)
        await store.write([(key, b'{"v": 2}')], 2)
        assert store.get(key) == b'{"v": 2}'
        assert (await self.recovered(store))[key] == (b'{"v": 2}', 2)

    async def test_a_removed_incident_is_gone_live_and_from_what_a_restart_recovers(self):
        store = await self.make_store()
        gone, kept = new_key(), new_key()
        await store.write([(gone, b'{"v": 1}'), (kept, b'{"v": 1}')], 1)
        size = len(store)
        await store.remove(gone, 1)
        assert store.get(gone) is None and gone not in dict(store.items()) and len(store) == size - 1
        recovered = await self.recovered(store)
        assert gone not in recovered and recovered[kept] == (b'{"v": 1}', 1)

    async def test_writing_nothing_changes_nothing(self):
        store = await self.make_store()
        key = new_key()
        await store.write([(key, b'{"v": 1}')], 0)
        before, size = await self.recovered(store), len(store)
        await store.write([], 0)
        assert (await self.recovered(store), len(store)) == (before, size)
