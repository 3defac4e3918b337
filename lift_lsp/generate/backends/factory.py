"""Build the configured backend from the settings."""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from pathlib import Path

from lift_lsp.generate.backends.base import Backend, BackendError
from lift_lsp.generate.backends.cache import CachedBackend, default_cache_dir
from lift_lsp.generate.backends.modal import modal_backend
from lift_lsp.generate.backends.openai import OpenAIBackend, normalize_base_url
from lift_lsp.options import BackendOptions, GenerationOptions

LOCAL_EXTRA_HINT = "the local backend needs `pip install 'lift-lsp[local]'`"


def make_backend(
    options: BackendOptions, generation: GenerationOptions, env: Mapping[str, str] = os.environ
) -> Backend | None:
    """The backend `options` describe (None for kind "none"), behind the on-disk cache when `generation.cache`.

    Raises `BackendError("config", ...)` for settings that cannot work (no URL, no model, missing extra).
    """
    if options.kind == "none":
        return None
    backend: Backend
    if options.kind in ("openai", "modal"):
        if not options.url.strip():
            raise BackendError(
                "config",
                f"backend.url is not set; the {options.kind} backend needs the endpoint's base URL"
                " (e.g. http://127.0.0.1:30000/v1)",
            )
        if not options.model.strip():
            raise BackendError(
                "config", f"backend.model is not set; the {options.kind} backend needs the served model name"
            )
        api_key = env.get(options.api_key_env, "").strip() or None
        if options.kind == "openai":
            backend = OpenAIBackend(
                options.url,
                options.model,
                api_key=api_key,
                constraint_format=options.constraint_format,
                timeout_s=options.timeout_s,
                connect_timeout_s=options.connect_timeout_s,
                max_retries=options.max_retries,
                backend_id=f"openai {normalize_base_url(options.url)}",
                auth_hint=f"set ${options.api_key_env} to the endpoint's API key"
                if api_key is None
                else f"check the API key in ${options.api_key_env}",
            )
        else:
            backend = modal_backend(
                options.url,
                options.model,
                env=env,
                backend_id=f"modal {normalize_base_url(options.url)}",
                api_key=api_key,
                # The Modal deployment is SGLang: keep modal's default (its `ebnf` field) unless the user chose.
                constraint_format=options.constraint_format
                if "constraint_format" in options.model_fields_set
                else "ebnf",
                timeout_s=options.timeout_s,
                connect_timeout_s=options.connect_timeout_s,
                max_retries=options.max_retries,
            )
    elif options.kind == "local":
        if not options.model.strip():
            raise BackendError(
                "config", "backend.model is not set; the local backend needs a Hugging Face id or a path"
            )
        try:  # imported lazily: it needs torch and transformers (the `local` extra)
            local = importlib.import_module("lift_lsp.generate.backends.local")
        except ImportError as exc:
            raise BackendError("config", f"{LOCAL_EXTRA_HINT} ({exc})") from None
        backend = local.LocalBackend(options.model)
    else:  # pragma: no cover - the options model allows no other kind
        raise BackendError("config", f"unknown backend kind {options.kind!r}")
    if generation.cache:
        cache_dir = Path(generation.cache_dir).expanduser() if generation.cache_dir.strip() else default_cache_dir(env)
        backend = CachedBackend(backend, cache_dir)
    return backend
