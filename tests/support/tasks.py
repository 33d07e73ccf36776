"""The names of trio's live tasks, to check what a server leaves running."""

from __future__ import annotations

import trio


def task_names(nursery: trio.Nursery | None = None) -> list[str]:
    """Names of every task under ``nursery`` (its children and all their
    descendants), sorted; without one, of every task of the run, the root included."""
    if nursery is None:
        root = trio.lowlevel.current_root_task()
        names = [root.name]
        stack = [child for child_nursery in root.child_nurseries for child in child_nursery.child_tasks]
    else:
        names = []
        stack = list(nursery.child_tasks)
    while stack:
        task = stack.pop()
        names.append(task.name)
        for child_nursery in task.child_nurseries:
            stack.extend(child_nursery.child_tasks)
    return sorted(names)
