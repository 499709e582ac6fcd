"""`python -m siamese_runtime` runs the command line, from the entry that guards the process first."""

from .cli.entry import main

raise SystemExit(main())
