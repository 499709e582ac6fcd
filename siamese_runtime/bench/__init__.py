"""`siamese-runtime bench`: `matrix` (what to measure, the measuring, the subcommand's flags), `machine` (what
it ran on), `profile` (onnxruntime's profiler by op type), `report` (JSON checked against report.schema.json,
Markdown, PNG).

Empty on purpose: the command line imports `matrix` for the subcommand's flags on every start, and `matrix`
loads the other modules only when a benchmark runs.
"""
