"""Request parsing and validation: body bytes -> JSON object -> rows in feature order."""

from core.request.json_body import check_content_type, decode_json_object
from core.request.rows import BODY_KEYS, RowSchema, rows_from_payload

__all__ = ["BODY_KEYS", "RowSchema", "check_content_type", "decode_json_object", "rows_from_payload"]
