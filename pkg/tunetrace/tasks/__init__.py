"""Task types: the TaskType contract (base.py), `dispatch.get_task_type` (a registry entry -> its instance; the
registry itself, pure facts, is `tunetrace.registry`), one module per type, and helpers the types share.

Import from the modules (`tunetrace.tasks.dispatch`, `tunetrace.tasks.base`); this file stays empty so
that importing one module never imports a task type, and the code hash of a rule covers only what it runs.
"""
