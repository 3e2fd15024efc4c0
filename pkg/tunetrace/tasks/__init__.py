"""Task types: the TaskType contract (base.py), the registry (registry.py, imports no torch), one module per type.

Import from the modules (`tunetrace.tasks.registry`, `tunetrace.tasks.base`); this file stays empty so
that importing the registry never imports a task type, and the code hash of a rule covers only what it runs.
"""
