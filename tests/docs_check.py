"""What the documentation test checks, as plain functions (so a test can feed them fakes).

- Markdown: GitHub-style heading anchors and explicit ``<a id="...">`` anchors, sections, the
  backticked codes of a table's first column, and relative links (with ``#anchor``) that must
  resolve.
- ``meta`` keys: dotted key paths of real records, and the keys written by dict literals in the
  task modules (``meta={...}``, ``meta = {...}``, ``meta["key"] = ...``).
- Skip reasons: every f-string of the form ``f"{<...>subtask}:<reason>"`` in the package source,
  with the formatted parts of ``<reason>`` resolved to the string constants that can reach them
  (assignments in the enclosing function or module, return values of the called function,
  followed through ``import ... as`` names; values that are plainly not strings, such as a
  class instance or a list, are left out); every string constant ``"<family>:<reason>"`` for a
  known family or subtask name; and the ``<subtask>:<reason>`` keys of a dataset manifest.
- Anchors cited in the package source: every ``docs/<page>.md#<anchor>`` (and ``README.md#…``)
  written in a docstring or comment.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "multispa"
DOCS = ROOT / "docs"

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_EXPLICIT_ANCHOR = re.compile(r"""<a\s+(?:id|name)\s*=\s*["']([^"']+)["']""")
_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_CODE = re.compile(r"`([^`]+)`")


# ------------------------------------------------------------------------------------ markdown


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation removed, spaces to ``-``."""
    text = re.sub(r"<[^>]+>", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@dataclass(frozen=True)
class Line:
    """One line of a Markdown file outside code fences."""

    number: int  # 1-based
    text: str
    heading_level: int  # 0 for a non-heading line
    anchors: tuple[str, ...]  # anchors defined on this line


def markdown_lines(text: str) -> list[Line]:
    """The lines outside fenced code blocks, with headings and anchors resolved."""
    lines: list[Line] = []
    seen: dict[str, int] = {}
    fenced = False
    for number, raw in enumerate(text.splitlines(), start=1):
        if _FENCE.match(raw):
            fenced = not fenced
            continue
        if fenced:
            continue
        anchors = list(_EXPLICIT_ANCHOR.findall(raw))
        level = 0
        match = _HEADING.match(raw)
        if match:
            level = len(match.group(1))
            slug = github_slug(match.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.append(slug if count == 0 else f"{slug}-{count}")
        lines.append(Line(number, raw, level, tuple(anchors)))
    return lines


def ambiguous_anchors(text: str) -> list[str]:
    """Anchors that lead to two different places.

    An explicit ``<a id>`` leads to the heading that follows it, so ``<a id="units">`` just
    above ``### Units`` is one place; the same id above another heading is two.
    """
    lines = markdown_lines(text)
    targets: dict[str, set[int]] = {}
    for i, line in enumerate(lines):
        head = next((j for j in range(i, len(lines)) if lines[j].heading_level), i)
        for anchor in line.anchors:
            targets.setdefault(anchor, set()).add(lines[head].number)
    return sorted(anchor for anchor, places in targets.items() if len(places) > 1)


def anchors_of(text: str) -> set[str]:
    """Every anchor a Markdown text defines (headings and ``<a id>``)."""
    return {anchor for line in markdown_lines(text) for anchor in line.anchors}


def section(text: str, anchor: str) -> str:
    """The text of the section an anchor opens, up to the next heading of the same or higher
    level (an ``<a id>`` line opens the section of the heading that follows it).

    Raises:
        KeyError: no such anchor.
    """
    lines = markdown_lines(text)
    start = next((i for i, line in enumerate(lines) if anchor in line.anchors), None)
    if start is None:
        raise KeyError(anchor)
    head = next((i for i in range(start, len(lines)) if lines[i].heading_level), None)
    if head is None:
        return "\n".join(line.text for line in lines[start:])
    level = lines[head].heading_level
    end = next(
        (i for i in range(head + 1, len(lines)) if 0 < lines[i].heading_level <= level),
        len(lines),
    )
    return "\n".join(line.text for line in lines[start:end])


def parent_section(text: str, anchor: str) -> str:
    """The section of the nearest heading above ``anchor``'s heading with a lower level (the
    whole family section around a subtask's heading); the anchor's own section if none."""
    lines = markdown_lines(text)
    start = next(i for i, line in enumerate(lines) if anchor in line.anchors)
    head = next(i for i in range(start, len(lines)) if lines[i].heading_level)
    level = lines[head].heading_level
    parent = next(
        (i for i in range(head - 1, -1, -1) if 0 < lines[i].heading_level < level), None
    )
    if parent is None:
        return section(text, anchor)
    return section(text, lines[parent].anchors[-1])


def first_column_codes(text: str) -> set[str]:
    """Backticked codes in the first cell of every table row of ``text``."""
    codes: set[str] = set()
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("|") or set(stripped) <= set("|-: "):
            continue
        cell = re.split(r"(?<!\\)\|", stripped)[1]
        codes.update(code.replace("\\|", "|") for code in _CODE.findall(cell))
    return codes


def relative_links(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, target)`` of every link and image that is not a URL."""
    for line in markdown_lines(text):
        bare = _INLINE_CODE.sub("", line.text)
        for target in _LINK.findall(bare):
            if not _SCHEME.match(target):
                yield line.number, target


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """Relative links of a Markdown file whose file, or ``#anchor`` in it, does not exist."""
    problems: list[str] = []
    text = path.read_text(encoding="utf-8")
    for number, target in relative_links(text):
        where = f"{path.relative_to(root)}:{number}: {target}"
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path.resolve()
        if root.resolve() not in (resolved, *resolved.parents):
            problems.append(f"{where}: points outside the repository")
            continue
        if not resolved.exists():
            problems.append(f"{where}: no such file")
            continue
        if anchor:
            if resolved.suffix != ".md":
                problems.append(f"{where}: anchor into a non-Markdown file")
            elif anchor not in anchors_of(resolved.read_text(encoding="utf-8")):
                problems.append(f"{where}: no anchor #{anchor} in {resolved.name}")
    return problems


# ----------------------------------------------------------------------------------- subtasks


def undocumented_subtasks(subtasks: Iterable[str], labels_text: str) -> list[str]:
    """Subtask names without an anchor of the same name in ``labels.md``."""
    anchors = anchors_of(labels_text)
    return [name for name in subtasks if name not in anchors]


# ----------------------------------------------------------------------------------- meta keys


def meta_key_paths(meta: Mapping[str, object], prefix: str = "") -> set[str]:
    """Dotted key paths of a ``meta`` object (nested objects add ``parent.child``)."""
    paths: set[str] = set()
    for key, value in meta.items():
        path = f"{prefix}{key}"
        paths.add(path)
        if isinstance(value, Mapping):
            paths |= meta_key_paths(value, f"{path}.")
    return paths


def undocumented_meta_keys(
    records: Iterable[Mapping[str, object]], documented: set[str]
) -> dict[str, str]:
    """Meta key paths of ``records`` missing from ``documented``, with one record id each."""
    missing: dict[str, str] = {}
    for record in records:
        meta = record["meta"]
        assert isinstance(meta, Mapping)
        for path in sorted(meta_key_paths(meta) - documented):
            missing.setdefault(path, str(record["id"]))
    return missing


def documented_meta_keys(formats_text: str) -> set[str]:
    """The keys listed in the first column of the ``record-meta`` section of data-formats.md."""
    return first_column_codes(section(formats_text, "record-meta"))


class UnresolvedSource(Exception):
    """A construct the static scan cannot turn into names (extend the scan or the code)."""


def _dict_key_paths(node: ast.Dict, prefix: str, where: str) -> set[str]:
    paths: set[str] = set()
    for key, value in zip(node.keys, node.values, strict=True):
        if key is None:  # ``**splat``: its keys are only known at run time
            continue
        names = _constant_strings(key)
        if names is None:
            raise UnresolvedSource(f"{where}: meta key {ast.unparse(key)!r} is not a constant")
        for name in names:
            paths.add(f"{prefix}{name}")
            if isinstance(value, ast.Dict):
                paths |= _dict_key_paths(value, f"{prefix}{name}.", where)
    return paths


def _constant_strings(node: ast.expr) -> set[str] | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        body, orelse = _constant_strings(node.body), _constant_strings(node.orelse)
        return None if body is None or orelse is None else body | orelse
    return None


def _is_meta_name(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and "meta" in node.id.lower()


def _literal_dicts(node: ast.expr) -> list[ast.Dict]:
    """A dict literal, or the dict literals a list, tuple or comprehension builds its items from."""
    if isinstance(node, ast.Dict):
        return [node]
    if isinstance(node, ast.List | ast.Tuple):
        return [d for item in node.elts for d in _literal_dicts(item)]
    if isinstance(node, ast.ListComp | ast.GeneratorExp):
        return _literal_dicts(node.elt)
    return []


def _parameters(trees: Iterable[ast.Module]) -> dict[str, list[list[str]]]:
    """Function or class name → the positional parameter names of each definition (``self``
    dropped; a class's are its annotated fields in order, as a dataclass takes them)."""
    found: dict[str, list[list[str]]] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names = [a.arg for a in (*node.args.posonlyargs, *node.args.args)]
                names = names[1:] if names[:1] == ["self"] else names
            elif isinstance(node, ast.ClassDef):
                names = [
                    item.target.id for item in node.body
                    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                    and "ClassVar" not in ast.unparse(item.annotation)
                ]
            else:
                continue
            found.setdefault(node.name, []).append(names)
    return found


def _callee_names(call: ast.Call, function: ast.AST | None) -> set[str]:
    """Names the called function may have: ``f(...)``, ``obj.f(...)``, or a local name bound to
    such an attribute (``make = a.f if x else a.g``; ``make(...)``)."""
    callee = call.func
    if isinstance(callee, ast.Attribute):
        return {callee.attr}
    if not isinstance(callee, ast.Name):
        return set()
    names = {callee.id}
    for statement in ast.walk(function) if function is not None else ():
        for target, value in _assignments(statement):
            if target == callee.id:
                names |= {n.attr for n in ast.walk(value) if isinstance(n, ast.Attribute)}
    return names


def static_meta_keys(sources: Mapping[str, str]) -> dict[str, str]:
    """Meta key paths written by dict literals in ``sources`` (name → code), with one place each.

    Found: dict literals passed to a parameter whose name holds ``meta`` (``meta=<dict>``,
    ``metas=[<dict> for ...]``, or positionally to a function of ``sources`` with such a
    parameter, also through a local name bound to the method), ``<...meta...> = <dict>``
    (annotated or not) and ``<...meta...>["key"] = value``.

    Raises:
        UnresolvedSource: a key that is not a constant (or a choice between constants).
    """
    trees = {name: ast.parse(code) for name, code in sources.items()}
    parameters = _parameters(trees.values())
    found: dict[str, str] = {}
    for name, tree in trees.items():
        enclosing: dict[int, ast.AST] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    if inner is not node:
                        enclosing[id(inner)] = node
        for node in ast.walk(tree):
            where = f"{name}:{getattr(node, 'lineno', 0)}"
            dicts: list[ast.Dict] = []
            if isinstance(node, ast.Call):
                for keyword in node.keywords:
                    if keyword.arg and "meta" in keyword.arg:
                        dicts += _literal_dicts(keyword.value)
                for callee in _callee_names(node, enclosing.get(id(node))):
                    for names in parameters.get(callee, []):
                        dicts += [
                            d for param, arg in zip(names, node.args, strict=False)
                            if "meta" in param for d in _literal_dicts(arg)
                        ]
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if _is_meta_name(target) and node.value is not None:
                        dicts += _literal_dicts(node.value)
                    elif isinstance(target, ast.Subscript) and _is_meta_name(target.value):
                        keys = _constant_strings(target.slice)
                        if keys is None:
                            raise UnresolvedSource(
                                f"{where}: meta key {ast.unparse(target.slice)!r} is not a "
                                "constant"
                            )
                        for key in keys:
                            found.setdefault(key, where)
            for literal in dicts:
                for path in _dict_key_paths(literal, "", where):
                    found.setdefault(path, where)
    return found


# -------------------------------------------------------------------------------- skip reasons


@dataclass(frozen=True)
class ReasonSite:
    """One ``f"{...subtask}:<reason>"`` in the source.

    Attributes:
        where: ``file:line``.
        reasons: the reason strings it can produce, when every part resolves.
        pattern: a regular expression for the reason when a part does not resolve (None when
            ``reasons`` is complete).
    """

    where: str
    reasons: frozenset[str]
    pattern: str | None


#: Expressions whose value is never a string (they add no reason when a name may hold them).
_NOT_STRINGS = (
    ast.List, ast.Tuple, ast.Dict, ast.Set, ast.ListComp, ast.SetComp, ast.DictComp,
    ast.GeneratorExp, ast.Lambda,
)


class _Scope:
    """The parsed package: module-level assignments and functions, for name resolution."""

    def __init__(self, sources: Mapping[str, str]) -> None:
        self.trees = {name: ast.parse(code) for name, code in sources.items()}
        self.module_assignments: dict[str, dict[str, list[ast.expr]]] = {}
        self.functions: dict[str, list[tuple[str, ast.FunctionDef]]] = {}
        self.classes: set[str] = set()
        # module → {local name: (defining module's file suffix, imported name)}
        self.imports: dict[str, dict[str, tuple[str, str]]] = {}
        self.enclosing: dict[int, ast.FunctionDef] = {}
        for name, tree in self.trees.items():
            assigned: dict[str, list[ast.expr]] = {}
            for statement in tree.body:
                for target, value in _assignments(statement):
                    assigned.setdefault(target, []).append(value)
            self.module_assignments[name] = assigned
            self.imports[name] = {
                alias.asname or alias.name: (node.module.replace(".", "/") + ".py", alias.name)
                for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
                for alias in node.names
            }
            self.classes |= {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
            # ast.walk visits an outer function before the functions inside it, so the last
            # assignment of ``enclosing`` is the innermost function.
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    self.functions.setdefault(node.name, []).append((name, node))
                    for inner in ast.walk(node):
                        if inner is not node:
                            self.enclosing[id(inner)] = node

    def values(
        self, node: ast.expr, module: str, function: ast.FunctionDef | None, depth: int = 0
    ) -> set[str] | None:
        """The strings ``node`` can evaluate to, or None when that cannot be determined."""
        if depth > 8:
            return None
        if isinstance(node, ast.Constant):
            if isinstance(node.value, str):
                return {node.value}
            return set() if node.value is None else None
        if isinstance(node, _NOT_STRINGS):
            return set()
        if isinstance(node, ast.IfExp):
            body = self.values(node.body, module, function, depth + 1)
            orelse = self.values(node.orelse, module, function, depth + 1)
            return None if body is None or orelse is None else body | orelse
        if isinstance(node, ast.JoinedStr):
            parts: list[set[str]] = []
            for part in node.values:
                if isinstance(part, ast.Constant):
                    parts.append({str(part.value)})
                    continue
                resolved = self.values(part.value, module, function, depth + 1)
                if resolved is None:
                    return None
                parts.append(resolved)
            return {"".join(combo) for combo in itertools.product(*parts)}
        if isinstance(node, ast.Name):
            return self._name(node.id, module, function, depth)
        if isinstance(node, ast.Call):
            callee = node.func
            name = callee.id if isinstance(callee, ast.Name) else (
                callee.attr if isinstance(callee, ast.Attribute) else None
            )
            if name is None:
                return None
            home, name = self.imports[module].get(name, (module, name))
            if name in self.classes:  # a class of the package: an instance, not a string
                return set()
            return self._returns(name, home, depth)
        return None

    def _name(
        self, name: str, module: str, function: ast.FunctionDef | None, depth: int
    ) -> set[str] | None:
        candidates: list[tuple[ast.expr, str, ast.FunctionDef | None]] = []
        if function is not None:
            for statement in ast.walk(function):
                for target, value in _assignments(statement):
                    if target == name:
                        candidates.append((value, module, function))
            if any(arg.arg == name for arg in _arguments(function)) and not candidates:
                return None
        if not candidates:
            candidates = [(v, module, None) for v in self.module_assignments[module].get(name, [])]
        if not candidates:
            candidates = [
                (v, other, None)
                for other, assigned in self.module_assignments.items()
                for v in assigned.get(name, [])
            ]
        if not candidates:
            return None
        found: set[str] = set()
        for value, where, scope in candidates:
            resolved = self.values(value, where, scope, depth + 1)
            if resolved is None:
                return None
            found |= resolved
        return found

    def _returns(self, name: str, module: str, depth: int) -> set[str] | None:
        """The strings function ``name`` may return; defined in ``module`` (a source name, or
        the file suffix of the module it was imported from) if there, else anywhere."""
        defs = [d for d in self.functions.get(name, []) if d[0].endswith(module)]
        defs = defs or self.functions.get(name, [])
        if not defs:
            return None
        found: set[str] = set()
        for where, definition in defs:
            returns = [n for n in ast.walk(definition) if isinstance(n, ast.Return)]
            if not returns:
                return None
            for statement in returns:
                if statement.value is None:
                    continue
                resolved = self.values(statement.value, where, definition, depth + 1)
                if resolved is None:
                    return None
                found |= resolved
        return found


def _arguments(function: ast.FunctionDef) -> list[ast.arg]:
    args = function.args
    return [*args.posonlyargs, *args.args, *args.kwonlyargs,
            *([args.vararg] if args.vararg else []), *([args.kwarg] if args.kwarg else [])]


def _assignments(statement: ast.AST) -> Iterator[tuple[str, ast.expr]]:
    """``(name, value)`` of a plain or annotated assignment to a simple name."""
    if isinstance(statement, ast.Assign):
        for target in statement.targets:
            if isinstance(target, ast.Name):
                yield target.id, statement.value
    elif (
        isinstance(statement, ast.AnnAssign)
        and statement.value is not None
        and isinstance(statement.target, ast.Name)
    ):
        yield statement.target.id, statement.value


def _is_subtask_prefix(node: ast.JoinedStr) -> bool:
    if len(node.values) < 2:
        return False
    first, second = node.values[0], node.values[1]
    return (
        isinstance(first, ast.FormattedValue)
        and ast.unparse(first.value).endswith("subtask")
        and isinstance(second, ast.Constant)
        and isinstance(second.value, str)
        and second.value.startswith(":")
    )


def skip_reason_sites(
    sources: Mapping[str, str], prefixes: Iterable[str] = ()
) -> list[ReasonSite]:
    """Every ``f"{...subtask}:<reason>"`` of ``sources`` (name → code) and what it produces,
    and every string constant ``"<prefix>:<reason>"`` for one of ``prefixes`` (family or
    subtask names, for reasons counted under a fixed key such as ``nview:too_few_frames``).

    A formatted part that resolves to no string at all counts as unresolved.

    Raises:
        UnresolvedSource: a reason made only of parts that cannot be resolved.
    """
    scope = _Scope(sources)
    sites: list[ReasonSite] = []
    fixed = re.compile(
        "(?:" + "|".join(map(re.escape, sorted(set(prefixes)))) + r"):([a-z0-9_]+)"
    ) if prefixes else None
    for module, tree in scope.trees.items():
        for node in ast.walk(tree):
            if (
                fixed is not None
                and isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and (match := fixed.fullmatch(node.value))
            ):
                where = f"{module}:{node.lineno}"
                sites.append(ReasonSite(where, frozenset({match.group(1)}), None))
                continue
            if not (isinstance(node, ast.JoinedStr) and _is_subtask_prefix(node)):
                continue
            where = f"{module}:{node.lineno}"
            function = scope.enclosing.get(id(node))
            head = node.values[1].value[1:]  # type: ignore[union-attr]
            parts: list[set[str] | None] = [{head}] if head else []
            for part in node.values[2:]:
                if isinstance(part, ast.Constant):
                    parts.append({str(part.value)})
                else:
                    resolved = scope.values(part.value, module, function)  # type: ignore[attr-defined]
                    parts.append(resolved or None)  # no string at all: unresolved
            known = [p for p in parts if p is not None]
            if not known or not any(s for p in known for s in p if s):
                raise UnresolvedSource(
                    f"{where}: skip reason {ast.unparse(node)} cannot be resolved to constants"
                )
            if all(p is not None for p in parts):
                reasons = {"".join(c) for c in itertools.product(*parts)}  # type: ignore[arg-type]
                sites.append(ReasonSite(where, frozenset(reasons), None))
            else:
                pattern = "".join(
                    "[a-z0-9_]+" if p is None else "(?:" + "|".join(map(re.escape, sorted(p))) + ")"
                    for p in parts
                )
                sites.append(ReasonSite(where, frozenset(), pattern))
    return sites


def documented_skip_reasons(labels_text: str) -> set[str]:
    """The reason codes in the first column of the tables of the ``skip-reasons`` section."""
    return first_column_codes(section(labels_text, "skip-reasons"))


def undocumented_reason_sites(sites: Iterable[ReasonSite], documented: set[str]) -> list[str]:
    """Problems of the sites: reasons not documented, patterns no documented reason matches."""
    problems: list[str] = []
    for site in sites:
        for reason in sorted(site.reasons - documented):
            problems.append(f"{site.where}: skip reason {reason!r} is not documented")
        if site.pattern is not None and not any(
            re.fullmatch(site.pattern, reason) for reason in documented
        ):
            problems.append(
                f"{site.where}: no documented skip reason matches {site.pattern!r}"
            )
    return problems


def manifest_reasons(manifest: Mapping[str, object]) -> set[tuple[str, str]]:
    """``(subtask, reason)`` of every ``skipped`` key of a dataset manifest."""
    found: set[tuple[str, str]] = set()
    skipped = manifest.get("skipped") or {}
    assert isinstance(skipped, Mapping)
    for counts in skipped.values():
        for key in counts:
            subtask, _, reason = str(key).partition(":")
            found.add((subtask, reason))
    return found


def text_sources(root: Path, suffixes: tuple[str, ...] = (".py", ".yaml", ".md")) -> dict[str, str]:
    """Every text file under ``root`` with one of ``suffixes``, by path relative to the
    repository (caches and virtual environments left out)."""
    return {
        str(path.relative_to(ROOT)): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*"))
        if path.suffix in suffixes and path.is_file()
        and not {"__pycache__", ".venv", ".pytest_cache"} & set(path.parts)
    }


def package_sources(root: Path = SRC) -> dict[str, str]:
    """Every Python file of the package, by path relative to the repository."""
    return {
        str(path.relative_to(ROOT)): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*.py"))
    }


# ------------------------------------------------------------------------- anchors cited in code

_CITATION = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.md)#([\w-]+)")


_MORE_ANCHORS = re.compile(r"(?<=[\s(,;])#([a-z][\w-]*)")


def cited_anchors(sources: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """``(file:line, page, anchor)`` of every ``<page>.md#<anchor>`` written in ``sources``
    (name → text: docstrings, comments and strings alike), and of every further ``#<anchor>``
    after it on the same line (``docs/labels.md#depth, #depth-quotas``: both in labels.md);
    ``page`` is relative to the repository root (``docs/labels.md``, ``README.md``)."""
    found: list[tuple[str, str, str]] = []
    for name, text in sources.items():
        for number, line in enumerate(text.splitlines(), start=1):
            matches = list(_CITATION.finditer(line))
            for k, match in enumerate(matches):
                where, page = f"{name}:{number}", match.group(1)
                found.append((where, page, match.group(2)))
                stop = matches[k + 1].start() if k + 1 < len(matches) else len(line)
                found += [(where, page, more)
                          for more in _MORE_ANCHORS.findall(line, match.end(), stop)]
    return found


def broken_citations(sources: Mapping[str, str], root: Path = ROOT) -> list[str]:
    """Citations of :func:`cited_anchors` whose page or anchor does not exist."""
    problems: list[str] = []
    anchors: dict[str, set[str] | None] = {}
    for where, page, anchor in cited_anchors(sources):
        if page not in anchors:
            path = root / page
            anchors[page] = anchors_of(path.read_text(encoding="utf-8")) if path.is_file() else None
        known = anchors[page]
        if known is None:
            problems.append(f"{where}: {page}#{anchor}: no such page")
        elif anchor not in known:
            problems.append(f"{where}: {page}#{anchor}: no such anchor")
    return problems
