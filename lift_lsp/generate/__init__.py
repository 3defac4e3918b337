"""The generate stage: forward mode (spec -> IR -> code), its prompts, constraints and grammars, and the backends."""
