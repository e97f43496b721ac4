"""Shared pytest configuration: the Kubernetes API stand-in's fixtures are a plugin."""

pytest_plugins = ["tests.standin.fixtures"]
