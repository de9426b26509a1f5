"""Work pools and work queues with the CLI and the SDK (issue 9 §2)."""

from prefect.client.schemas.actions import WorkQueueCreate


async def create_queue(client, saved):
    queue = await client.create_work_queue(
        name="sdk-queue", work_pool_name="p", priority=2, concurrency_limit=4
    )
    return {k: getattr(queue, k) for k in ("name", "priority", "concurrency_limit", "is_paused")}


async def read_queue(client, saved):
    queue = await client.read_work_queue_by_name("sdk-queue", work_pool_name="p")
    return {
        "name": queue.name,
        "priority": queue.priority,
        "concurrency_limit": queue.concurrency_limit,
        "work_pool_name": queue.work_pool_name,
    }


async def pool_queues(client, saved):
    queues = await client.read_work_queues(work_pool_name="p")
    return sorted((q.name, q.priority) for q in queues)


STEPS = [
    ("cli", "work-pool create p --type process"),
    ("cli", "work-pool create p --type process"),
    ("cli", "work-pool ls"),
    ("cli", "work-pool inspect p"),
    ("cli", "work-pool set-concurrency-limit p 5"),
    ("cli", "work-pool inspect p"),
    ("cli", "work-pool clear-concurrency-limit p"),
    ("cli", "work-pool pause p"),
    ("cli", "work-pool resume p"),
    ("cli", "work-pool preview p --hours 1"),
    ("cli", "work-pool slots p"),
    ("cli", "work-queue create high -p p --priority 1 -l 3"),
    ("cli", "work-queue create high -p p"),
    ("cli", "work-queue create x -p nope"),
    ("cli", "work-queue ls -p p"),
    ("cli", "work-queue inspect high -p p"),
    ("cli", "work-pool set-concurrency-limit p 2"),
    ("cli", "work-pool slots p"),
    ("cli", "work-queue pause high -p p"),
    ("cli", "work-queue resume high -p p"),
    ("cli", "work-queue set-concurrency-limit high 7 -p p"),
    ("cli", "work-queue clear-concurrency-limit high -p p"),
    ("cli", "work-queue inspect high -p p"),
    ("sdk", "create_work_queue", create_queue),
    ("sdk", "read_work_queue_by_name", read_queue),
    ("sdk", "read_work_queues", pool_queues),
    ("cli", "work-queue delete high -p p"),
    ("cli", "work-queue ls -p p"),
    ("cli", "work-pool delete p"),
    ("cli", "work-pool inspect p"),
]
