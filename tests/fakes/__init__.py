"""Fake servers speaking real HTTP APIs on 127.0.0.1, for tests."""
