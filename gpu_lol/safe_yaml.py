"""YAML for files a user (or a stranger's repo) wrote: bounded in size, depth and node count.

PyYAML's ``safe_load`` is safe from code execution but not from cost: a "billion laughs" file of
nested aliases is eight lines long and expands into hundreds of millions of nodes as soon as
anything walks it (schema validation, duplicate-key checks, JSON output). Config files never
need aliases, so :func:`load` refuses them; it also refuses more than ``max_depth`` levels of
nesting (deep ``[[[[…`` exhausts the recursion limit) and more than ``max_nodes`` nodes, and
turns every parser or constructor failure (a 100 000-digit integer, an impossible date) into
:class:`YamlLimitError` with the line and the dotted field where it happened.

The check is a first pass over the parser's *events* (libyaml when available, so it is fast),
before anything is composed or constructed; the second pass composes the node tree that callers
use to report line numbers.
"""

from __future__ import annotations

from typing import Any

MAX_NODES = 100_000
MAX_DEPTH = 64


class YamlLimitError(ValueError):
    """The text is not YAML we accept; ``line`` is 1-based (or None), ``field`` dotted."""

    def __init__(self, problem: str, line: int | None = None, field: str | None = None):
        super().__init__(problem)
        self.problem = problem
        self.line = line
        self.field = field


def _loader():
    import yaml

    return getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader


def _mark_line(mark: Any) -> int | None:
    return mark.line + 1 if mark is not None else None


def _field(stack: list[list[Any]]) -> str | None:
    out = ""
    for frame in stack:
        key = frame[2]
        if key is None:
            continue
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            out += f".{key}" if out else str(key)
    if len(out) > 80:
        out = out[:77] + "..."
    return out or None


def check(text: str, *, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> None:
    """Raise :class:`YamlLimitError` unless ``text`` parses within the limits, alias-free."""
    import yaml

    # frame: [kind ("map"|"seq"), expecting_key (map only), current key/index, next index]
    stack: list[list[Any]] = []
    nodes = 0
    try:
        for event in yaml.parse(text, Loader=_loader()):
            if not isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.MappingStartEvent,
                                      yaml.SequenceStartEvent, yaml.MappingEndEvent,
                                      yaml.SequenceEndEvent)):
                continue
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                stack.pop()
                _after_value(stack)
                continue
            nodes += 1
            if nodes > max_nodes:
                raise YamlLimitError(f"more than {max_nodes} YAML nodes", _mark_line(event.start_mark),
                                     _field(stack))
            parent = stack[-1] if stack else None
            if isinstance(event, yaml.AliasEvent):
                if parent is not None and parent[0] == "seq":
                    parent[2] = parent[3]
                raise YamlLimitError(f"YAML aliases (*{event.anchor}) are not allowed here",
                                     _mark_line(event.start_mark), _field(stack))
            if parent is not None:
                if parent[0] == "map" and parent[1]:
                    # a key: scalar keys name the field; a collection key is unusual but legal
                    if isinstance(event, yaml.ScalarEvent):
                        parent[2] = event.value
                        parent[1] = False
                        continue
                    parent[2] = "?"
                elif parent[0] == "seq":
                    parent[2] = parent[3]
                    parent[3] += 1
            if isinstance(event, yaml.ScalarEvent):
                _after_value(stack)
                continue
            if len(stack) >= max_depth:
                raise YamlLimitError(f"nested more than {max_depth} levels deep",
                                     _mark_line(event.start_mark), _field(stack))
            kind = "map" if isinstance(event, yaml.MappingStartEvent) else "seq"
            stack.append([kind, True, None, 0])
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise YamlLimitError(f"invalid YAML: {problem}", _mark_line(mark), _field(stack)) from None


def _after_value(stack: list[list[Any]]) -> None:
    """A value finished: the enclosing mapping now expects its next key."""
    if stack and stack[-1][0] == "map":
        parent = stack[-1]
        if not parent[1]:
            parent[1] = True
        # a collection used as a key finished: its value comes next
        elif parent[2] == "?":
            parent[1] = False


def compose_and_load(text: str, *, max_nodes: int = MAX_NODES,
                     max_depth: int = MAX_DEPTH) -> tuple[Any, Any]:
    """``(node, data)`` for ``text``: the composed node tree (for line numbers) and the data.

    Raises :class:`YamlLimitError` for anything the limits refuse or the parser rejects.
    """
    import yaml

    check(text, max_nodes=max_nodes, max_depth=max_depth)
    loader_cls = _loader()
    try:
        node = yaml.compose(text, Loader=loader_cls)
        if node is None:
            return None, None
        loader = loader_cls("")
        try:
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise YamlLimitError(f"invalid YAML: {problem}", _mark_line(mark)) from None
    except (ValueError, OverflowError, TypeError, RecursionError) as exc:
        # int('9' * 10**5) (Python's digit limit), a date such as 2024-13-45, an unhashable key
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise YamlLimitError(f"a value cannot be read: {message[:120]}",
                             *_failing_scalar(node, loader_cls)) from None
    return node, data


def _failing_scalar(root: Any, loader_cls: Any) -> tuple[int | None, str | None]:
    """(line, field) of the first scalar that cannot be constructed on its own."""
    import yaml

    loader = loader_cls("")
    todo: list[tuple[Any, str]] = [(root, "")]
    try:
        while todo:
            node, where = todo.pop()
            if isinstance(node, yaml.ScalarNode):
                try:
                    loader.construct_object(node, deep=True)
                except Exception:  # noqa: BLE001 - any failure is the one we are looking for
                    return _mark_line(node.start_mark), where or None
            elif isinstance(node, yaml.MappingNode):
                for key, value in reversed(node.value):
                    name = key.value if isinstance(key, yaml.ScalarNode) else "?"
                    todo.append((value, f"{where}.{name}" if where else str(name)))
                    todo.append((key, where))
            elif isinstance(node, yaml.SequenceNode):
                for i in range(len(node.value) - 1, -1, -1):
                    todo.append((node.value[i], f"{where}[{i}]"))
    finally:
        loader.dispose()
    return None, None


def load(text: str, **limits: int) -> Any:
    """The data in ``text`` (None for an empty document), within the limits."""
    return compose_and_load(text, **limits)[1]


def dump(data: Any, **kwargs: Any) -> str:
    """``yaml.safe_dump`` that never writes anchors/aliases (so :func:`load` reads it back)."""
    import yaml

    class _NoAliasDumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:  # noqa: ARG002 - the signature PyYAML calls
            return True

    return yaml.dump(data, Dumper=_NoAliasDumper, **kwargs)
