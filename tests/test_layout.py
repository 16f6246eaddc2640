"""The package's floors, read from its imports (every ``import``, inside functions too).

    ground   lipnb.paths, lipnb.errors
    core     lipnb.model, lipnb.data, lipnb.train, lipnb.online, lipnb.metrics   (the paper as code)
    profiles lipnb.profiles                                                      (the one settings table)
    report   lipnb.report                                                        (tables, figures, viewer)
    repro    lipnb.repro                                                         (notebook stages, papermill)
    lab      lipnb.lab                                                           (experiments, diagnostics, benches)
    cli      lipnb.cli, lipnb.__main__                                           (command line)

A module may import its own floor and the floors below it, never one above; no two modules
import each other, directly or around a circle. The README's "Architecture" section says the same.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lipnb"
FLOORS = [
    ("ground", ("lipnb.paths", "lipnb.errors")),
    ("core", ("lipnb.model", "lipnb.data", "lipnb.train", "lipnb.online", "lipnb.metrics")),
    ("profiles", ("lipnb.profiles",)),
    ("report", ("lipnb.report",)),
    ("repro", ("lipnb.repro",)),
    ("lab", ("lipnb.lab",)),
    ("cli", ("lipnb.cli", "lipnb.__main__")),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path, known: set) -> set:
    """The lipnb modules ``path`` imports, wherever the import statement stands."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # lipnb.model.lip.LIP -> lipnb.model.lip
                target = target.rpartition(".")[0]
            if target.startswith("lipnb") and target != name:
                out.add(target)
    return out


def floor_of(name: str) -> int:
    for level, (_, prefixes) in enumerate(FLOORS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return level
    raise AssertionError(f"{name} is on no floor: add it to FLOORS and to the README's Architecture section")


def graph() -> dict:
    found = modules()
    known = set(found) - {"lipnb"}
    return {name: imports(path, known) for name, path in found.items() if name != "lipnb"}


def test_every_module_is_on_a_floor_and_imports_only_its_floor_or_below():
    upward = [f"{a} ({FLOORS[floor_of(a)][0]}) imports {b} ({FLOORS[floor_of(b)][0]})"
              for a, targets in graph().items() for b in sorted(targets) if floor_of(b) > floor_of(a)]
    assert upward == []


def test_the_core_imports_only_the_core_and_the_ground():
    core = FLOORS[1][0]
    outside = [f"{a} imports {b}" for a, targets in graph().items() if FLOORS[floor_of(a)][0] == core
               for b in sorted(targets) if floor_of(b) > 1]
    assert outside == []


def find_cycle(edges: dict):
    """One circle of imports as a list of modules, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycles():
    edges = {a: {b for b in targets if not a.startswith(b + ".")} for a, targets in graph().items()}  # a package's
    # __init__ re-exporting its own modules is not a circle with them
    assert find_cycle(edges) is None, " -> ".join(find_cycle(edges))


def test_the_checks_can_fail():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert floor_of("lipnb.model.lip") < floor_of("lipnb.cli.train")
    with pytest.raises(AssertionError, match="on no floor"):
        floor_of("lipnb.somewhere")


def test_no_other_module_keys_settings_by_profile_name():
    """Only lipnb/profiles.py holds a table keyed by profile names or asks which profile a run is."""
    from lipnb.profiles import PROFILES

    def names_profile(node) -> bool:
        return "profile" in ast.unparse(node)

    offenders = []
    for name, path in modules().items():
        if name == "lipnb.profiles":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
                if len(keys & set(PROFILES)) >= 2:
                    offenders.append(f"{name}:{node.lineno}: a dict keyed by profile names")
            if isinstance(node, ast.Compare) and names_profile(node.left) and any(
                    isinstance(c, ast.Constant) and c.value in PROFILES for c in node.comparators):
                offenders.append(f"{name}:{node.lineno}: asks which profile a run is")
    assert offenders == []
