"""The test suite, a package: helpers are imported by name (``from tests.support import ...``),
and tests/aws_lambda is ``tests.aws_lambda``, never a second ``aws_lambda``."""
