"""Claims are tests: every number a notebook answer, the README or a docstring states, asserted
at the precision stated, with the app put in the stated preset (DESIGN.md, "Claims are tests")."""
