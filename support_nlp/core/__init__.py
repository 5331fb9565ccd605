"""Dagster-free NLP core: plain functions and small classes, importable and testable on their own."""
