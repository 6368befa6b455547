"""The gateway tests here run against both stores, SQLite and Redis (issue 17 item 4):
tests/redisstack.py says which modules and how."""

from tests.redisstack import gateway_store, pytest_generate_tests, shared_redis

__all__ = ["gateway_store", "pytest_generate_tests", "shared_redis"]
