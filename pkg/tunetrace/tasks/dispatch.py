"""The one way generic steps reach a task type: `get_task_type(task.type)`, imported on first use.

Kept apart from the registry so that reading the registry's facts (config checks, the DAG build)
never pulls in the contract or a task type's code; a rule whose code imports this module dispatches
to a task type, so its code hash covers that type's module (rules/code.smk).
"""

from __future__ import annotations

import functools
import importlib

from tunetrace.registry import entry
from tunetrace.tasks.base import TaskType


@functools.cache
def get_task_type(name: str) -> TaskType:
    """The task type's instance (imported on first use); refuses a class whose name disagrees with its entry."""
    module, cls_name = entry(name).target.split(":")
    cls = getattr(importlib.import_module(module), cls_name)
    if not (isinstance(cls, type) and issubclass(cls, TaskType)):
        raise TypeError(f"task type '{name}': {entry(name).target} is not a TaskType subclass")
    declared = getattr(cls, "name", None)
    if declared != name:
        raise TypeError(f"task type '{name}': {entry(name).target} declares name {declared!r}; they must agree")
    return cls(entry(name))
