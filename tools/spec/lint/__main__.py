"""python -m schema_architect.tools.spec.lint --write-docs: regenerate docs/rules.md."""

from . import main

raise SystemExit(main())
