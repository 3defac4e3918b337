"""The app deployed from `modal_backend/`: the OpenAI-compatible client with Modal's proxy-auth headers.

Environment variables (a proxy auth token of the Modal workspace, created under Settings → Proxy Auth Tokens):

- `MODAL_PROXY_TOKEN_ID`: sent as the `Modal-Key` header;
- `MODAL_PROXY_TOKEN_SECRET`: sent as the `Modal-Secret` header.

Set both, or neither for an endpoint deployed without proxy auth. The constraint goes as SGLang's `ebnf` field by
default: the deployment is SGLang with XGrammar, whose JSON-schema conversion admits raw control characters and
refuses escapes in a `maxLength` string, so lift-lsp sends the EBNF that `Constraint.ebnf` carries. A cold start
answers after minutes, and a request past 150 s gets Modal's 303 to its result: `OpenAIBackend` follows it, within
the request's `timeout_s` (set `backend.timeoutS` above the cold-start time, see modal_backend/README.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from lift_lsp.generate.backends.base import BackendError
from lift_lsp.generate.backends.openai import OpenAIBackend

TOKEN_ID_ENV = "MODAL_PROXY_TOKEN_ID"
TOKEN_SECRET_ENV = "MODAL_PROXY_TOKEN_SECRET"
AUTH_HINT = f"set {TOKEN_ID_ENV} and {TOKEN_SECRET_ENV} to a proxy auth token of the app's Modal workspace"


def modal_headers(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Modal's proxy-auth headers from the environment; {} when neither variable is set."""
    token_id = env.get(TOKEN_ID_ENV, "").strip()
    token_secret = env.get(TOKEN_SECRET_ENV, "").strip()
    if bool(token_id) != bool(token_secret):
        missing = TOKEN_SECRET_ENV if token_id else TOKEN_ID_ENV
        raise BackendError(
            "config", f"{missing} is not set; Modal proxy auth needs both {TOKEN_ID_ENV} and {TOKEN_SECRET_ENV}"
        )
    if not token_id:
        return {}
    return {"Modal-Key": token_id, "Modal-Secret": token_secret}


def modal_backend(url: str, model: str, *, env: Mapping[str, str] = os.environ, **kw: Any) -> OpenAIBackend:
    """An `OpenAIBackend` (id "modal") for the Modal app at `url`; `kw` go to `OpenAIBackend`."""
    headers = {**modal_headers(env), **(kw.pop("headers", None) or {})}
    kw.setdefault("constraint_format", "ebnf")
    kw.setdefault("backend_id", "modal")
    kw.setdefault("auth_hint", AUTH_HINT)
    return OpenAIBackend(url, model, headers=headers, **kw)
