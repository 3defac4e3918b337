"""The Modal deployment of lift-lsp's generation backend: SGLang + XGrammar behind an OpenAI-compatible API."""
