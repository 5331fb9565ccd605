"""Helpers of the stack test (test_stack.py): real PostgreSQL, S3, Dagster code server, webserver and daemon
processes on 127.0.0.1, a GraphQL client and a headless browser."""
