"""The IR: what a function must do, as pydantic models.

Every string and list is bounded so that generation constrained by the exported schema terminates, even for a
model that never chooses to stop on its own. `grammars/ir.schema.json` and `grammars/code.schema.json` are exported
from these models (`python -m lift_lsp.generate.schemas`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Bounded string types. The bounds are part of the generation contract: change them and re-export the schemas.
Name = Annotated[str, StringConstraints(max_length=64)]
TypeText = Annotated[str, StringConstraints(max_length=200)]
Short = Annotated[str, StringConstraints(max_length=160)]
Text = Annotated[str, StringConstraints(max_length=400)]
Long = Annotated[str, StringConstraints(max_length=1200)]
PySource = Annotated[str, StringConstraints(max_length=300)]
"""Python literal (or expression) source text."""

MAX_PARAMETERS = 64
"""More than the longest parameter list in the standard library (26: `subprocess.Popen`) and in numpy, pandas,
networkx, pydantic, transformers or torch (55). A longer one is cut, and the IR says how many were left out."""
MAX_RAISES = 32
"""More than the most exceptions one docstring documents in networkx, pandas, scikit-learn, transformers, google-auth,
openstacksdk, azure-storage-blob and twisted (25). More are cut, and the IR says how many were left out."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)


class Source(StrEnum):
    """Where a part of the IR came from."""

    DOCSTRING = "docstring"
    SPEC_COMMENT = "spec-comment"
    ANNOTATION = "annotation"
    JEDI = "jedi"
    CODE = "code"
    """Read off the function's implementation (effects, placeholders)."""
    EXAMPLES = "examples"
    """Inferred from the documented examples (e.g. a type hole's options)."""
    DEFAULT = "default"
    MODEL = "model"
    USER = "user"


class ParamKind(StrEnum):
    POSITIONAL_ONLY = "positional-only"
    POSITIONAL_OR_KEYWORD = "positional-or-keyword"
    VAR_POSITIONAL = "var-positional"
    KEYWORD_ONLY = "keyword-only"
    VAR_KEYWORD = "var-keyword"


class EffectKind(StrEnum):
    PURE = "pure"
    IO = "io"
    MUTATION = "mutation"
    NETWORK = "network"
    RANDOM = "random"
    TIME = "time"


class HoleKind(StrEnum):
    INTENT = "intent"
    SIGNATURE = "signature"
    TYPE = "type"
    CONDITION = "condition"
    IMPLEMENTATION = "implementation"


class Intent(_Model):
    summary: Short = ""
    details: Long = ""


class Parameter(_Model):
    name: Name
    type: TypeText | None = None
    """An annotation: the signature's; else the documented type's, where it reads as one; else jedi's."""
    documented_type: TypeText | None = None
    """The type as the docstring writes it (`list of str`, `int, optional`), when it documents one."""
    description: Long = ""
    default: PySource | None = None
    kind: ParamKind = ParamKind.POSITIONAL_OR_KEYWORD


class Returns(_Model):
    type: TypeText | None = None
    """As `Parameter.type`: the signature's annotation, else the documented type's, else jedi's."""
    documented_type: TypeText | None = None
    description: Long = ""


class Raise(_Model):
    exception: Name
    when: Text = ""


class Signature(_Model):
    name: Name
    parameters: Annotated[list[Parameter], Field(max_length=MAX_PARAMETERS)] = []
    parameters_left_out: int = 0
    """How many parameters past the bound the IR leaves out."""
    returns: Returns = Returns()
    raises: Annotated[list[Raise], Field(max_length=MAX_RAISES)] = []
    raises_left_out: int = 0
    """How many documented exceptions past the bound the IR leaves out."""
    is_async: bool = False


class Condition(_Model):
    """A pre- or postcondition. `expr` is a side-effect-free Python boolean expression over the parameters (and
    `result` in a postcondition); it is empty when the spec states the condition only in prose (`text`)."""

    expr: Text = ""
    text: Text = ""


class Example(_Model):
    """One documented call. `args` maps parameter names to Python literal source; `call` is the expression as
    written (it may wrap the call, e.g. `sorted(f(x))`); exactly one of `result` and `raises` is expected."""

    args: Annotated[dict[Name, PySource], Field(max_length=16)] = {}
    call: PySource = ""
    result: PySource | None = None
    raises: Name | None = None
    line: int | None = None
    """1-based line in the file where the example is written (reverse mode only)."""


class Effect(_Model):
    kind: EffectKind
    description: Text = ""


class Hole(_Model):
    """A typed hole: something the spec leaves open. It blocks generation until resolved."""

    id: Name
    kind: HoleKind
    type: TypeText | None = None
    description: Text = ""
    options: Annotated[list[Short], Field(max_length=6)] = []
    default: Short | None = None


class Provenance(_Model):
    part: Short
    """A path into the IR, e.g. `intent`, `signature.parameters.x.type`, `examples`."""
    source: Source
    detail: Short = ""


class IR(_Model):
    """The intermediate representation of one function's spec."""

    intent: Intent = Intent()
    signature: Signature
    preconditions: Annotated[list[Condition], Field(max_length=8)] = []
    postconditions: Annotated[list[Condition], Field(max_length=8)] = []
    examples: Annotated[list[Example], Field(max_length=12)] = []
    effects: Annotated[list[Effect], Field(max_length=6)] = []
    holes: Annotated[list[Hole], Field(max_length=6)] = []
    provenance: Annotated[list[Provenance], Field(max_length=MAX_PARAMETERS + 32)] = []
    """One entry per part with a source: never more than the parameters' types and a dozen other parts."""


class CodeCandidate(_Model):
    """What the model writes in the code step: the body of the function (without its `def` line), the imports it
    needs and any helper functions (full source) to place above it."""

    imports: Annotated[list[Annotated[str, StringConstraints(max_length=120)]], Field(max_length=8)] = []
    helpers: Annotated[list[Annotated[str, StringConstraints(max_length=2000)]], Field(max_length=3)] = []
    body: Annotated[str, StringConstraints(max_length=3000)]
    """The last field: a model's answer ends with the body (a note after it cost tokens and, past its bound, lost
    the candidate)."""
