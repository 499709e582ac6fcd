"""`python -m siamese_runtime` runs the command line."""

from .cli import main

raise SystemExit(main())
