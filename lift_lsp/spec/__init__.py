"""The spec stage: sites, docstrings, type context, reverse mode (the IR of a function) and its rendering."""
