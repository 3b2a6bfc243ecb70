"""``.joblib``, ``.pkl``, ``.pickle`` (optionally compressed): ``joblib.load``.

Unpickling runs code chosen by whoever wrote the file; pin the file with ``MODEL_SHA256`` (checked
before this module sees a byte) or use ``.skops`` or ``.onnx``.
"""

from __future__ import annotations

import logging

from core.errors import ModelInvalid
from core.model.context import LoadContext
from core.model.description import ModelDescription
from core.model.formats._estimator import describe_estimator, deserialize

logger = logging.getLogger("serverless_ml.model")


def load(context: LoadContext) -> ModelDescription:
    import joblib  # the first model load pays for it, not the import of core

    def read():
        try:
            return joblib.load(context.file_or_bytes())
        except ImportError as exc:
            raise ModelInvalid(
                f"the model at {context.display} needs module '{exc.name}', which is not installed here; "
                "install the package the model was built with"
            ) from None
        except Exception as exc:  # any unpickling failure: a corrupt or foreign file
            logger.error("model deserialisation failed", exc_info=True, extra={"fields": {"model_uri": context.display}})
            raise ModelInvalid(
                f"the file at {context.display} could not be deserialised as a joblib/pickle model "
                f"({type(exc).__name__}); expected a file written by joblib.dump"
            ) from None

    estimator, caught, seconds = deserialize(context, read)
    return describe_estimator(estimator, context, caught, seconds, "joblib")
