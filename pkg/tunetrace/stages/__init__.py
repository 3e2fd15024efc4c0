"""One module per rule: the one function its workflow script calls (generic, dispatching to the task type through
`tasks.dispatch`). Rule `X` -> `workflow_scripts/X.py` -> `tunetrace.stages.<module>`; docs/architecture.md has
the table."""
