"""The editor's side: the language server, its code actions, per-document analysis, and open documents."""
