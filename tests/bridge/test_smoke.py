from bridge import EventFilter, NewEvent, Producer
from bridge.sql import SqlEventStore

PRODUCER = Producer("tests", "1")


async def test_append_then_read(store: SqlEventStore) -> None:
    event = NewEvent(
        "acme",
        "debugging.execution",
        "execution/e1",
        "TickStarted",
        {"execution_id": "e1", "tick": 1},
        PRODUCER,
    )
    assert await store.append([event, event]) == [1, 2]
    page = await store.read(EventFilter("acme"))
    assert [e.stream_version for e in page.events] == [1, 2]
