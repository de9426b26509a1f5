"""A small flow for trying pushpool: deploy it to a pushpool work pool and run it.

    PREFECT_API_URL=http://127.0.0.1:4200/api python examples/hello.py
"""
from pathlib import Path

from prefect import flow, task


@task
def add_one(x: int) -> int:
    return x + 1


@flow(log_prints=True)
def hello(x: int = 1) -> int:
    y = add_one(x)
    print(f"hello from pushpool: {x} + 1 = {y}")
    return y


if __name__ == "__main__":
    hello.from_source(
        source=str(Path(__file__).parent.resolve()), entrypoint="hello.py:hello"
    ).deploy(name="hello-local", work_pool_name="local", parameters={"x": 41})
