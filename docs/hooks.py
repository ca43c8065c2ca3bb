"""MkDocs hook: the pages that are generated from the code and the README at build time.

Nothing generated is committed, so nothing can drift:

- ``reference/cli.md``     from the argparse parsers (``cnnkit.cli.build_parser()``)
- ``reference/config.md``  from the config dataclasses (``cnnkit.config``): key, type, default,
                           and the comment written beside each field
- ``guide/*.md``, ``getting-started.md``  from the README's sections (by heading)
- the models' parameters / MACs table and the recipes, from their registries
- ``benchmarks.md``        the README's development section and ``benchmarks/results/*.md``

The generator functions are plain (no MkDocs import) so that ``tests/test_docs.py`` can
check them quickly; ``on_files`` is the only MkDocs entry point.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import re
import sys
import tokenize
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:  # document this checkout, whatever cnnkit is installed
    sys.path.insert(0, str(ROOT / "src"))


# ---------------------------------------------------------------- CLI reference


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser, str]]:
    """{verb: (its parser, its one-line help)} of a parser's sub-parsers, in definition order."""
    out: dict[str, tuple[argparse.ArgumentParser, str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                out[name] = (sub, helps.get(name, ""))
    return out


def cli_verbs(parser: argparse.ArgumentParser | None = None) -> list[str]:
    """Every verb of `cnnkit` (nested ones as "verb sub")."""
    if parser is None:
        from cnnkit.cli import build_parser

        parser = build_parser()
    verbs: list[str] = []
    for name, (sub, _) in _subcommands(parser).items():
        verbs.append(name)
        verbs += [f"{name} {v}" for v in cli_verbs(sub)]
    return verbs


@contextlib.contextmanager
def _columns(n: int) -> Iterator[None]:
    """argparse wraps usage lines at $COLUMNS: fix it so the page does not depend on the terminal."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(n)
    try:
        yield
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def _md(text: str) -> str:
    """Help text as Markdown: outside `code spans`, escape what Markdown or HTML would read as
    markup (``<name>``, ``*weight``, ``[x]``); underscores inside words are plain text already."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # the even parts are outside code spans
        parts[i] = re.sub(r"([*<>\[\]])", r"\\\1", parts[i])
    return "`".join(parts)


def _argument(action: argparse.Action, flag_keys: dict[str, str], parser: argparse.ArgumentParser) -> str:
    if action.option_strings:
        name = ", ".join(action.option_strings)
        if action.nargs != 0:
            metavar = action.metavar or (
                "{" + ",".join(map(str, action.choices)) + "}" if action.choices else action.dest.upper()
            )
            name += f" {metavar}"
    else:
        name = str(action.metavar or action.dest)
    parts = [f"`{name}`"]
    if action.choices and action.option_strings and action.metavar:
        parts.append("(one of " + ", ".join(f"`{c}`" for c in action.choices) + ")")
    if action.help and action.help != argparse.SUPPRESS:
        parts.append("- " + _md(parser._get_formatter()._expand_help(action)))  # %(default)s as --help shows it
    if action.default not in (None, False, [], argparse.SUPPRESS) and action.nargs != 0:
        parts.append(f"(default: `{action.default}`)")
    if action.dest in flag_keys:
        key = flag_keys[action.dest]
        parts.append(f"(config key [`{key}`](config.md#{key.replace('.', '')}))")
    return "- " + " ".join(parts)


def _parser_section(verb: str, parser: argparse.ArgumentParser, summary: str, flag_keys: dict[str, str]) -> list[str]:
    lines = [f"## cnnkit {verb}", ""]
    description = parser.description or summary
    if description:
        lines += [_md(description), ""]
    with _columns(78):  # fits the code block of the page's text column
        usage = parser.format_usage().strip()
    lines += ["```text", usage, "```", ""]
    for group in parser._action_groups:
        actions = [
            a
            for a in group._group_actions
            if a.help != argparse.SUPPRESS and not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
        ]
        if not actions:
            continue
        title = group.title or "arguments"
        lines += [f"**{title}**", ""]
        lines += [_argument(a, flag_keys, parser) for a in actions]
        lines.append("")
    for name, (sub, help_) in _subcommands(parser).items():
        lines += _parser_section(f"{verb} {name}", sub, help_, flag_keys)
    return lines


def cli_reference() -> str:
    """The CLI reference page: every verb's usage and arguments, from the argparse parsers."""
    from cnnkit.cli import build_parser
    from cnnkit.training.flags import TRAIN_FLAGS

    parser = build_parser()
    verbs = _subcommands(parser)
    lines = [
        "# Command line",
        "",
        "Generated from the argparse parsers (`cnnkit.cli.build_parser()`) when the site is built;",
        "`cnnkit VERB --help` prints the same. Flags of `train` that set a configuration key link",
        "to it; any other key is set with `--set KEY=VALUE`.",
        "",
        "| verb | what |",
        "|---|---|",
    ]
    lines += [f"| [`{v}`](#cnnkit-{v}) | {_md(h)} |" for v, (_, h) in verbs.items()]
    lines.append("")
    for verb, (sub, help_) in verbs.items():
        lines += _parser_section(verb, sub, help_, TRAIN_FLAGS if verb in ("train", "lr-find") else {})
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- configuration reference


class ConfigKey(typing.NamedTuple):
    key: str  # dotted, e.g. optim.lr
    type: str
    default: Any
    help: str


def _field_comments(cls: type) -> dict[str, str]:
    """{field: the comment written on its line(s)} for a dataclass defined in a source file."""
    import ast
    import inspect

    source = Path(inspect.getsourcefile(cls) or "").read_text()
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    out: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == cls.__name__:
            for stmt in node.body:
                if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
                    end = stmt.end_lineno or stmt.lineno
                    text = " ".join(comments[n] for n in range(stmt.lineno, end + 1) if n in comments)
                    out[stmt.target.id] = text
    return out


def _type_text(tp: Any) -> str:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_text(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if typing.get_origin(tp) is dict:
        return "mapping"
    if typing.get_origin(tp) is typing.Literal:
        return " | ".join(map(str, typing.get_args(tp)))
    return getattr(tp, "__name__", str(tp))


def config_keys() -> list[ConfigKey]:
    """Every configuration key with its type, default and help, from the dataclasses."""
    from cnnkit.config import Config

    cfg = Config()
    keys = []
    for group in dataclasses.fields(cfg):
        section = getattr(cfg, group.name)
        hints = typing.get_type_hints(type(section))
        comments = _field_comments(type(section))
        for f in dataclasses.fields(section):
            help_ = f.metadata.get("help") or comments.get(f.name, "")
            keys.append(ConfigKey(f"{group.name}.{f.name}", _type_text(hints[f.name]), getattr(section, f.name), help_))
    return keys


def _cell(text: str) -> str:
    return _md(text).replace("|", "\\|")


def config_reference() -> str:
    """The configuration page: one table per group, generated from `cnnkit.config`."""
    lines = [
        "# Configuration keys",
        "",
        "Generated from the config dataclasses (`cnnkit.config`) when the site is built. Defaults",
        "live in code; a YAML file (`--config`) overrides them and flags override that. Any key is",
        "set with `--set group.key=value` (the value is read as YAML). An unknown key or a wrong",
        "type is an error that names it and suggests the nearest valid key.",
        "",
    ]
    group = None
    for k in config_keys():
        g = k.key.split(".")[0]
        if g != group:
            group = g
            lines += ["", f"## {g}", "", "| key | type | default | what |", "|---|---|---|---|"]
        default = json.dumps(k.default)
        lines.append(
            f'| <span id="{k.key.replace(".", "")}"></span>`{k.key}` | {_cell(k.type)} | `{default}` | {_cell(k.help)} |'
        )
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- README sections


def _headings(text: str) -> list[tuple[int, int, str]]:
    """(line index, level, title) of each Markdown heading outside fenced code blocks."""
    out = []
    fence = False
    for i, line in enumerate(text.splitlines()):
        if line.lstrip().startswith("```"):
            fence = not fence
        elif not fence and (m := re.match(r"(#{1,6}) (.+)", line)):
            out.append((i, len(m.group(1)), m.group(2).strip()))
    return out


def readme_section(title: str, *, subsections: bool = True, text: str | None = None) -> str:
    """The body of the README section `title` (without its heading), up to the next heading of
    the same or a higher level (any heading with subsections=False). A missing section is an
    error naming it: the docs build fails instead of publishing an empty page."""
    text = (ROOT / "README.md").read_text() if text is None else text
    lines = text.splitlines()
    heads = _headings(text)
    for n, (i, level, t) in enumerate(heads):
        if t == title:
            end = len(lines)
            for j, lv, _ in heads[n + 1 :]:
                if not subsections or lv <= level:
                    end = j
                    break
            return "\n".join(lines[i + 1 : end]).strip() + "\n"
    raise KeyError(f"README.md has no section {title!r} (docs/hooks.py GUIDE names it): rename it there too")


# page -> (title, [(README heading, include its subsections)])
GUIDE: dict[str, tuple[str, list[tuple[str, bool]]]] = {
    "getting-started.md": ("Getting started", [("The two commands", True), ("A 5-minute tour", True)]),
    "guide/datasets.md": ("Datasets", [("Pointing at data", True), ("Datasets", True)]),
    "guide/models.md": ("Models", [("Models", True), ("Transfer learning", True)]),
    "guide/recipes.md": ("Recipes", [("Recipes: tuned settings per dataset", True)]),
    "guide/training.md": (
        "Training",
        [("Configuration", False), ("Where runs go", True), ("Training engine", True)],
    ),
    "guide/explain.md": ("Explanations and reports", [("See what the network learned", True)]),
}


def _relink(markdown: str, page: str) -> str:
    """Relative links of README text (written from the repository root) as seen from `page`:
    the README's own links name files that the site carries at its root (CONTRIBUTING.md...)."""
    up = "../" * page.count("/")
    return re.sub(r"\]\((?![a-z]+:|#|/)([^)]+)\)", lambda m: f"]({up}{m.group(1)})", markdown)


def guide_page(path: str) -> str:
    title, sections = GUIDE[path]
    lines = [f"# {title}", ""]
    for heading, subs in sections:
        body = _relink(readme_section(heading, subsections=subs), path)
        if heading != title:
            lines += [f"## {heading}", ""]
        lines += [body, ""]
    if path == "guide/models.md":
        lines += ["## The registry", "", models_table()]
    if path == "guide/recipes.md":
        lines += ["## Every recipe", "", recipes_list()]
    return "\n".join(lines)


def models_table() -> str:
    """Parameters and MACs of every registered model at its default input (`cnnkit models`)."""
    from cnnkit.models.summary import human
    from cnnkit.models.zoo import zoo_rows

    lines = [
        "Generated from the model registry when the site is built; MACs for one image at the",
        "model's default input (`cnnkit summary NAME` shows them per layer).",
        "",
        "| model | parameters | MACs | input | pretrained | small_input | description |",
        "|---|--:|--:|---|---|---|---|",
    ]
    lines += [
        f"| `{r['name']}` | {r['params']:,} | {human(r['macs'])} | {r['input']} | "
        f"{'yes' if r['pretrained'] else 'no'} | {'yes' if r['small_input'] else 'no'} | {_cell(r['description'])} |"
        for r in zoo_rows()
    ]
    return "\n".join(lines) + "\n"


def recipes_list() -> str:
    """Each recipe's datasets and the keys it sets (`cnnkit recipes --show NAME`)."""
    from cnnkit.training.recipes import RECIPES

    lines = []
    for r in RECIPES.values():
        lines += [f"### {r.name}", "", _md(r.description), "", f"Default for: {', '.join(r.datasets)}.", ""]
        lines += ["```yaml", *(f"{k}: {json.dumps(v)}" for k, v in r.overrides.items()), "```", ""]
    return "\n".join(lines)


def benchmarks_page() -> str:
    lines = ["# Benchmarks", "", _relink(readme_section("Development"), "benchmarks.md"), "", "## Measured results", ""]
    lines += [
        "Each benchmark writes its results to `benchmarks/results/`; these are the files in this",
        "checkout, as measured (the machine and date are in each).",
        "",
    ]
    for md in sorted((ROOT / "benchmarks" / "results").glob("*.md")):
        text = md.read_text()
        text = re.sub(r"^(#{1,4}) ", lambda m: "#" * (len(m.group(1)) + 2) + " ", text, flags=re.M)
        lines += [f"### `{md.name}`", "", text, ""]
    return "\n".join(lines)


# the repository's own Markdown files that the site carries unchanged (the README links them)
REPO_PAGES = ("CONTRIBUTING.md", "CHANGELOG.md")


def generated_pages() -> dict[str, str]:
    """{path under docs/: Markdown} of every generated page."""
    pages = {"reference/cli.md": cli_reference(), "reference/config.md": config_reference()}
    pages.update({name: (ROOT / name).read_text() for name in REPO_PAGES})
    pages.update({path: guide_page(path) for path in GUIDE})
    pages["benchmarks.md"] = benchmarks_page()
    return pages


# ---------------------------------------------------------------- MkDocs entry point


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for path, content in generated_pages().items():
        files.append(File.generated(config, path, content=content))
    return files
