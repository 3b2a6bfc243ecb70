"""serverless-ml core: cloud-agnostic settings, storage, model loading, parsing, prediction and
the HTTP service. It imports no provider code, and no cloud SDK until a URI of its scheme is used.
"""

__version__ = "0.1.0"
