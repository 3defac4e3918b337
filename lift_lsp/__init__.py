"""lift-lsp: a language server that turns specs into code and checks code against its spec."""

__version__ = "0.1.0"
