# Shared pytest configuration. Real loopback servers (PostgreSQL via pgserver's
# binaries, the Tansu Kafka-protocol broker) come from tests/support/fixtures.py.
pytest_plugins = ["tests.support.fixtures"]
