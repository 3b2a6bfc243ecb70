"""The input schema of a model: its columns in order, each with a type and whether a missing
value is allowed, and the layout the model takes its rows in.

A leaf module (it imports nothing of core but errors): the request parser, the batch readers, the
model loader and the manifest all speak it. Where a schema comes from (first match wins) is
decided by the loader: the manifest, an MLflow signature, the fitted model, else all-numeric.

Its JSON form, as written in a manifest's ``input_schema`` and shown by ``GET /model``::

    {
      "layout": "frame",
      "columns": [
        {"name": "age", "type": "number", "nullable": true},
        {"name": "pclass", "type": "integer"},
        {"name": "sex", "type": "categorical", "categories": ["female", "male"], "unknown": "predicted"},
        {"name": "note", "type": "string"}
      ]
    }

Column types: ``number`` (any finite JSON number), ``integer``, ``boolean``, ``string``,
``categorical`` (its ``categories`` are the values the model was fitted on; ``unknown`` says
whether another value is ``predicted`` (an encoder with ``handle_unknown="ignore"``) or
``refused``), and ``any`` (a column the model reads but does not use, e.g. dropped by a
ColumnTransformer: any scalar).

Layouts: ``array`` (a 2-D float matrix, what a model fitted on numbers takes), ``frame`` (a
DataFrame with these columns, for models that select columns by name or read strings), ``text``
(one string per row, for a pipeline that starts with a text vectoriser).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

NUMBER, INTEGER, BOOLEAN, STRING, CATEGORICAL, ANY = "number", "integer", "boolean", "string", "categorical", "any"
COLUMN_TYPES = (NUMBER, INTEGER, BOOLEAN, STRING, CATEGORICAL, ANY)
ARRAY, FRAME, TEXT = "array", "frame", "text"
LAYOUTS = (ARRAY, FRAME, TEXT)
# where a schema came from, shown in GET /model
SOURCES = ("manifest", "mlflow", "model", "numeric")
_MAX_LISTED = 12


class SchemaInvalid(ValueError):
    """A schema's JSON (in a manifest or an MLflow signature) is not valid; the text says why."""


class Column(NamedTuple):
    """One input column. ``categories`` only for ``categorical``."""

    name: str
    type: str = NUMBER
    nullable: bool = False
    categories: tuple[Any, ...] | None = None
    unknown_predicted: bool = True  # categorical: a value outside ``categories`` is predicted

    def describe(self) -> str:
        """What a value of this column must be, for messages: ``a number``, ``one of 'a', 'b'``."""
        if self.type == CATEGORICAL and self.categories is not None:
            shown = ", ".join(_short_value(c) for c in self.categories[:_MAX_LISTED])
            more = f" and {len(self.categories) - _MAX_LISTED} more" if len(self.categories) > _MAX_LISTED else ""
            if self.unknown_predicted:
                return f"a {_category_kind(self.categories)} (known categories: {shown}{more})"
            return f"one of {shown}{more}"
        return {
            NUMBER: "a number", INTEGER: "an integer", BOOLEAN: "true or false", STRING: "a string",
            CATEGORICAL: "a category", ANY: "a number, string or boolean",
        }[self.type]

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "nullable": self.nullable}
        if self.categories is not None:
            out["categories"] = list(self.categories)
            out["unknown"] = "predicted" if self.unknown_predicted else "refused"
        return out


class InputSchema:
    """The columns a model takes (None: a model that says nothing of its width), its layout and
    where the schema came from. Read-only once built; built once per loaded model."""

    __slots__ = ("columns", "names", "index", "layout", "source", "plain_numeric", "model_checks_redundant")

    def __init__(
        self, columns: Sequence[Column] | None, *, layout: str = ARRAY, source: str = "numeric"
    ) -> None:
        self.columns = tuple(columns) if columns is not None else None
        self.names = tuple(c.name for c in self.columns) if self.columns is not None else None
        self.index = {name: i for i, name in enumerate(self.names or ())}
        self.layout = layout
        self.source = source
        # every column a number that may not be missing: the fast path, checked as before types
        self.plain_numeric = self.columns is None or all(
            c.type == NUMBER and not c.nullable for c in self.columns
        )
        # the model's own finite checks can only repeat core's: core refuses every infinity and
        # every null where a column takes none; a missing value reaches the model only in a column
        # read from the fitted model as taking NaN (an imputer, an encoder that takes it, allow_nan
        # tags), where those checks are 'allow-nan' and look for infinities alone. A manifest's or
        # a signature's word on nulls is not the model's, so those keep the checks
        self.model_checks_redundant = self.plain_numeric or source == "model"

    @classmethod
    def numeric(cls, names: Sequence[str] | None, *, nullable: bool = False, source: str = "numeric") -> InputSchema:
        """All columns numbers: a model fitted on a numeric matrix."""
        columns = None if names is None else [Column(str(n), NUMBER, nullable) for n in names]
        return cls(columns, source=source)

    @property
    def count(self) -> int | None:
        return None if self.names is None else len(self.names)

    def expected(self) -> str:
        """The schema in a few words, for messages."""
        if self.names is None:
            return "rows of numbers"
        if self.layout == TEXT:
            return "one text (a JSON string) per row"
        listed = ", ".join(self.names[:_MAX_LISTED]) + (", ..." if len(self.names) > _MAX_LISTED else "")
        return f"{len(self.names)} features: {listed}"

    def as_json(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "source": self.source,
            "columns": [c.as_json() for c in self.columns] if self.columns is not None else None,
        }

    def takes_rows_read_by(self, other: InputSchema) -> bool:
        """Whether rows that ``other`` read (and so checked) are rows this schema would read the
        same way: the same layout and columns of the same types, and a missing value only where
        this schema takes one too. A shadow candidate then predicts the primary's rows as read."""
        if self == other:
            return True
        if self.layout != other.layout or self.columns is None or other.columns is None:
            return False
        return len(self.columns) == len(other.columns) and all(
            mine._replace(nullable=False) == theirs._replace(nullable=False) and (mine.nullable or not theirs.nullable)
            for mine, theirs in zip(self.columns, other.columns, strict=True)
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InputSchema) and (self.columns, self.layout) == (other.columns, other.layout)

    def __hash__(self) -> int:
        return hash((self.columns, self.layout))

    def __repr__(self) -> str:
        return f"InputSchema({self.layout}, {len(self.columns or ())} columns, from {self.source})"


def schema_from_json(data: Any, *, source: str) -> InputSchema:
    """Read a schema's JSON form (see the module docstring); raise SchemaInvalid saying what is wrong."""
    if not isinstance(data, dict):
        raise SchemaInvalid(f"expected an object with 'columns', found a {type(data).__name__}")
    layout = data.get("layout", FRAME)
    if layout not in LAYOUTS:
        raise SchemaInvalid(f"'layout' is {layout!r}; expected one of {', '.join(LAYOUTS)}")
    raw_columns = data.get("columns")
    if not isinstance(raw_columns, list) or not raw_columns:
        raise SchemaInvalid("'columns' must be a non-empty list of columns")
    columns = []
    for i, raw in enumerate(raw_columns):
        where = f"columns[{i}]"
        if not isinstance(raw, dict):
            raise SchemaInvalid(f"{where} must be an object with 'name' and 'type'")
        name, kind = raw.get("name"), raw.get("type", NUMBER)
        if not isinstance(name, str) or not name:
            raise SchemaInvalid(f"{where}.name must be a non-empty string")
        if kind not in COLUMN_TYPES:
            raise SchemaInvalid(f"{where}.type is {kind!r}; expected one of {', '.join(COLUMN_TYPES)}")
        nullable = raw.get("nullable", False)
        if not isinstance(nullable, bool):
            raise SchemaInvalid(f"{where}.nullable must be true or false")
        categories = raw.get("categories")
        if categories is not None:
            if kind != CATEGORICAL:
                raise SchemaInvalid(f"{where} has 'categories' but its type is {kind!r}; expected 'categorical'")
            if not isinstance(categories, list) or not all(
                isinstance(c, (str, int, float)) and not isinstance(c, bool) for c in categories
            ):
                raise SchemaInvalid(f"{where}.categories must be a list of strings or numbers")
            categories = tuple(categories)
        unknown = raw.get("unknown", "predicted")
        if unknown not in ("predicted", "refused"):
            raise SchemaInvalid(f"{where}.unknown is {unknown!r}; expected 'predicted' or 'refused'")
        columns.append(Column(name, kind, nullable, categories, unknown == "predicted"))
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        raise SchemaInvalid("column names repeat")
    if layout == TEXT and (len(columns) != 1 or columns[0].type != STRING):
        raise SchemaInvalid("a 'text' layout takes exactly one column of type 'string'")
    return InputSchema(columns, layout=layout, source=source)


def _category_kind(categories: Sequence[Any]) -> str:
    return "string" if categories and isinstance(categories[0], str) else "number"


def _short_value(value: Any) -> str:
    if isinstance(value, str):
        return repr(value if len(value) <= 30 else value[:27] + "...")
    return repr(value)
