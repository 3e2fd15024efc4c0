# Code hashes: each rule's `code` param holds the content hashes of its workflow script and of every
# tunetrace module the script can run (its import closure, derived with ast; see
# tunetrace.provenance.codehash), plus the task type's module for rules that dispatch to it. The
# profiles leave Snakemake's mtime-based `code` trigger off: editing code reruns the rules that run
# it, touching a file reruns nothing.
import functools

from tunetrace.provenance.codehash import CodeIndex, ImportsCache
from tunetrace import registry

DISPATCH_MODULE = "tunetrace.tasks.dispatch"
# each module read and hashed once per DAG build, not once per rule; its imports parsed once per machine
CODE_INDEX = CodeIndex(PKG_DIR, ImportsCache.default())


@functools.lru_cache(maxsize=None)
def rule_code_hashes(rule_name, task_type):
    """Canonical JSON of the code hashes of `rule_name` (for one task type), once per DAG build."""
    script = Path(workflow.basedir) / "workflow_scripts" / f"{rule_name}.py"
    dispatches = DISPATCH_MODULE in CODE_INDEX.script_closure(script)
    extra = [registry.entry(task_type).module] if task_type and dispatches else []
    return as_json(CODE_INDEX.code_hashes(script, workflow.basedir, extra))


def get_code_params(rule_name):
    """Params function: the code hashes of `rule_name`, with the task type of the job's task."""

    def code_params(wildcards):
        task = getattr(wildcards, "task", None)
        return rule_code_hashes(rule_name, config["tasks"][task]["type"] if task else None)

    return code_params
