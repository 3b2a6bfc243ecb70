"""The ``serverless-ml`` command: the one place that knows every provider (core knows none)."""
