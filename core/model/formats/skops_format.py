"""``.skops``: ``skops.io.loads``, which rebuilds the model without running pickle code.

Only the types skops trusts by default and those listed in ``SKOPS_TRUSTED_TYPES`` are rebuilt; a
file holding any other type is refused, and the message lists those types so that an operator can
review them and add them to the setting. Trusting every type is deliberately impossible.
"""

from __future__ import annotations

import logging

from core.errors import ModelInvalid, ModelRuntimeMissing, ModelUntrustedTypes
from core.model.context import LoadContext
from core.model.description import ModelDescription
from core.model.formats._estimator import describe_estimator, deserialize

logger = logging.getLogger("serverless_ml.model")

# 0.12 fixed the trusted-type bypasses CVE-2025-54412 (OperatorFuncNode) and CVE-2025-54413
# (MethodNode); 0.14 stopped LossNode from importing a file's module before the audit (skops #506).
MINIMUM_SKOPS = (0, 14)


def load(context: LoadContext) -> ModelDescription:
    sio = _skops_io()
    try:
        found = sio.get_untrusted_types(file=context.path) if context.path else sio.get_untrusted_types(data=context.data)
        untrusted = [str(t) for t in found]
    except Exception as exc:  # not a zip, no schema, a schema from a newer skops
        logger.error("skops audit failed", exc_info=True, extra={"fields": {"model_uri": context.display}})
        raise ModelInvalid(
            f"the file at {context.display} could not be read as a skops file ({type(exc).__name__}); "
            "expected a file written by skops.io.dump"
        ) from None
    refused = tuple(t for t in untrusted if t not in context.skops_trusted_types)
    if refused:
        raise ModelUntrustedTypes(
            f"the skops file at {context.display} holds types that are not trusted: {', '.join(refused)}; "
            "it was not loaded. If you trust them, add them to SKOPS_TRUSTED_TYPES (comma-separated), e.g. "
            f"SKOPS_TRUSTED_TYPES={','.join(sorted(set(context.skops_trusted_types) | set(refused)))}",
            refused,
        )

    def read():
        try:
            if context.path:
                return sio.load(context.path, trusted=untrusted)
            return sio.loads(context.data, trusted=untrusted)
        except ImportError as exc:
            raise ModelInvalid(
                f"the model at {context.display} needs module '{exc.name}', which is not installed here; "
                "install the package the model was built with"
            ) from None
        except Exception as exc:
            logger.error("model deserialisation failed", exc_info=True, extra={"fields": {"model_uri": context.display}})
            raise ModelInvalid(
                f"the file at {context.display} could not be loaded by skops ({type(exc).__name__}); "
                "expected a file written by skops.io.dump"
            ) from None

    estimator, caught, seconds = deserialize(context, read)
    return describe_estimator(estimator, context, caught, seconds, "skops")


def _skops_io():
    try:
        import skops
        import skops.io as sio
    except ImportError:
        raise ModelRuntimeMissing(
            "the model is a .skops file, and skops is not installed here; install it with "
            "pip install 'serverless-ml[skops]'"
        ) from None
    version = _version_tuple(getattr(skops, "__version__", "0"))
    if version < MINIMUM_SKOPS:
        raise ModelRuntimeMissing(
            f"the model is a .skops file, and skops {skops.__version__} is installed here, which is older than "
            f"{'.'.join(map(str, MINIMUM_SKOPS))} and has known trusted-type bypasses (CVE-2025-54412, "
            "CVE-2025-54413); install pip install 'serverless-ml[skops]'"
        )
    return sio


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit()) or "0"
        parts.append(int(digits))
    return tuple(parts)
