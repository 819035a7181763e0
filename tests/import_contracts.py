"""An import-linter contract type of our own: no module imports another in a loop.

import-linter's own ``acyclic_siblings`` judges packages (``core.jobs`` and
``core.datasets`` may not import each other in any direction at all), which is not the
rule here; this one judges modules: every strongly connected group of two or more modules
of ``packages`` is a cycle, reported with the imports that close it. grimp's graph holds
every import, those inside functions and under ``TYPE_CHECKING`` too, so a lazy import
cannot hide a loop; an import that runs only for annotations may be named in
``ignore_imports`` with the reason beside it.

pyproject.toml registers it (``contract_types``); tests/unit/core/test_layers.py runs it.
"""

from __future__ import annotations

import grimp
from importlinter.application import contract_utils, output
from importlinter.application.contract_utils import AlertLevel
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


class AcyclicModulesContract(Contract):
    type_name = "acyclic_modules"

    packages = fields.ListField(subfield=fields.StringField())
    ignore_imports = fields.SetField(subfield=fields.ImportExpressionField(), required=False)
    unmatched_ignore_imports_alerting = fields.EnumField(AlertLevel, default=AlertLevel.ERROR)

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        removal = contract_utils.remove_ignored_imports_and_report(
            graph=graph,
            ignore_imports=self.ignore_imports,  # type: ignore[arg-type]
            unmatched_alerting=self.unmatched_ignore_imports_alerting,  # type: ignore[arg-type]
        )
        roots = tuple(str(p) for p in self.packages)  # type: ignore[attr-defined]
        modules = {m for m in graph.modules if m.split(".")[0] in roots}
        edges = {
            m: sorted(t for t in graph.find_modules_directly_imported_by(m) if t in modules)
            for m in modules
        }
        cycles = [
            _closing_imports(graph, group, edges)
            for group in strongly_connected(edges)
            if len(group) > 1
        ]
        return ContractCheck(
            kept=not cycles,
            warnings=list(removal.warnings),
            ignored_import_count=removal.ignored_import_count,
            metadata={"cycles": sorted(cycles)},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error(
                f"These modules import one another in a loop ({len(cycle)} imports):"
            )
            for line in cycle:
                output.print_error(f"- {line}")
            output.new_line()


def _closing_imports(
    graph: grimp.ImportGraph, group: set[str], edges: dict[str, list[str]]
) -> list[str]:
    """Each import between members of ``group``, with its line: what to cut."""
    lines = []
    for importer in sorted(group):
        for imported in edges[importer]:
            if imported in group:
                details = graph.get_import_details(importer=importer, imported=imported)
                where = ", ".join(f"l.{d['line_number']}" for d in details)
                lines.append(f"{importer} -> {imported} ({where})")
    return lines


def strongly_connected(edges: dict[str, list[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components, iterative (no recursion limit to meet)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                groups.append(group)
    return groups
