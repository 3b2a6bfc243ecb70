"""The model: loading it once (``loading``) in the format its extension names (``formats``:
joblib, skops, ONNX), with its optional manifest (``manifest``), and describing it
(``description``)."""

from core.model.description import ModelDescription
from core.model.loading import ModelHolder, load_model

__all__ = ["ModelDescription", "ModelHolder", "load_model"]
