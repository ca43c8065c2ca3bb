"""The documentation site's generated pages (docs/hooks.py): the CLI and configuration
references cover every verb, flag and key, and the README sections the guide is made of exist.
The generator functions are called directly (no MkDocs needed, well under a second)."""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path

import pytest

from cnnkit.cli import build_parser
from cnnkit.config import all_keys

ROOT = Path(__file__).resolve().parent.parent


def _load_hooks():
    spec = importlib.util.spec_from_file_location("cnnkit_docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hooks():
    return _load_hooks()


@pytest.fixture(scope="module")
def cli_page(hooks):
    return hooks.cli_reference()


def _parsers(parser: argparse.ArgumentParser, prefix: str = ""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield f"{prefix}{name}", sub
                yield from _parsers(sub, f"{prefix}{name} ")


def test_cli_reference_has_every_verb_and_flag(hooks, cli_page):
    verbs = dict(_parsers(build_parser()))
    assert len(verbs) >= 16  # train, evaluate, predict, ... report
    assert hooks.cli_verbs() == list(verbs)
    headings = re.findall(r"^## cnnkit (.+)$", cli_page, flags=re.M)
    assert headings == list(verbs)
    for verb, parser in verbs.items():
        section = cli_page.split(f"## cnnkit {verb}\n", 1)[1].split("\n## cnnkit ", 1)[0]
        for action in parser._actions:
            for flag in action.option_strings:
                if flag not in ("-h", "--help"):
                    assert f"`{flag}" in section or f", {flag}" in section, f"{verb}: {flag} missing"
            if action.help and action.help != argparse.SUPPRESS and not action.option_strings:
                assert f"`{action.metavar or action.dest}`" in section


def _section(page: str, verb: str) -> str:
    return page.split(f"## cnnkit {verb}\n", 1)[1].split("\n## cnnkit ", 1)[0]


def test_cli_reference_shows_every_help_text_and_the_config_key_of_each_train_flag(hooks, cli_page):
    from cnnkit.training.flags import TRAIN_FLAGS

    for verb, parser in _parsers(build_parser()):
        section = _section(cli_page, verb)
        for action in parser._actions:
            if action.help and action.help != argparse.SUPPRESS and not isinstance(action, argparse._HelpAction):
                assert hooks._md(parser._get_formatter()._expand_help(action)) in section, f"{verb}: {action.dest}"
    train = _section(cli_page, "train")
    dests = {a.dest for a in dict(_parsers(build_parser()))["train"]._actions}
    linked = [key for dest, key in TRAIN_FLAGS.items() if dest in dests]
    assert len(linked) > 20
    for key in linked:
        assert f"(config key [`{key}`](config.md#{key.replace('.', '')}))" in train


def test_cli_reference_formats_choices_defaults_and_markup():
    parser = argparse.ArgumentParser(prog="cnnkit")
    sub = parser.add_subparsers()
    p = sub.add_parser("demo", help="a demo verb", description="Demo: writes <run>/x.")
    p.add_argument("--mode", choices=("a", "b"), default="a", help="how (*not* markup) `<code stays>`")
    p.add_argument("--n", type=int, default=3, metavar="N", help="%(default)s by default")
    p.add_argument("path", help="a file")
    hooks_module = _load_hooks()
    page = "\n".join(hooks_module._parser_section("demo", p, "a demo verb", {"n": "train.epochs"}))
    assert "Demo: writes \\<run\\>/x." in page  # shown, not swallowed as an HTML tag
    assert "- `--mode {a,b}` - how (\\*not\\* markup) `<code stays>` (default: `a`)" in page
    assert "- `--n N` - 3 by default (default: `3`) (config key [`train.epochs`](config.md#trainepochs))" in page
    assert "- `path` - a file" in page
    assert "usage: cnnkit demo [-h] [--mode {a,b}] [--n N] path" in page


def test_config_reference_has_every_key_with_type_default_and_help(hooks):
    from cnnkit.config import Config

    page = hooks.config_reference()
    keys = all_keys()
    assert len(keys) > 80
    rows = {k.key: k for k in hooks.config_keys()}
    assert list(rows) == keys
    defaults = Config()
    for key in keys:
        group, name = key.split(".")
        row = rows[key]
        assert row.default == getattr(getattr(defaults, group), name), key
        line = next(line for line in page.splitlines() if f'<span id="{group}{name}"></span>`{key}`' in line)
        # a `|` in a help text is escaped so that it does not split the table row
        assert line.endswith(f"| {hooks._cell(row.help)} |") and line.count(" | ") == 3, line
    assert rows["data.image_size"].type == "int or null" and rows["optim.lr"].type == "float"
    assert sum(bool(r.help) for r in rows.values()) > 0.8 * len(rows)  # the comments beside the fields are found
    assert hooks._cell("none | oversample") == "none \\| oversample"


def test_field_comments_span_wrapped_fields(hooks, tmp_path, monkeypatch):
    # after a formatting pass a long field may wrap; its comments are still found
    src = tmp_path / "wrapped_cfg.py"
    src.write_text(
        "from dataclasses import dataclass, field\n\n"
        "@dataclass\nclass C:\n"
        "    a: int = 1  # the first\n"
        "    b: dict = field(\n        default_factory=dict  # the second,\n    )  # wrapped\n"
        "    c: int = 3\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import wrapped_cfg

    assert hooks._field_comments(wrapped_cfg.C) == {"a": "the first", "b": "the second, wrapped", "c": ""}


def test_readme_sections_of_the_guide_exist(hooks):
    for _title, sections in hooks.GUIDE.values():
        for heading, subsections in sections:
            body = hooks.readme_section(heading, subsections=subsections)
            assert len(body) > 100, heading
    assert "make demo" in hooks.readme_section("The two commands")
    # a heading inside a fenced code block is not a section boundary
    text = "# T\n\n## A\none\n```bash\n# not a heading\n```\ntwo\n### A.1\nthree\n## B\nfour\n"
    assert hooks.readme_section("A", text=text) == "one\n```bash\n# not a heading\n```\ntwo\n### A.1\nthree\n"
    assert hooks.readme_section("A", subsections=False, text=text) == "one\n```bash\n# not a heading\n```\ntwo\n"
    with pytest.raises(KeyError, match="no section 'Nope'"):
        hooks.readme_section("Nope", text=text)


def test_readme_links_are_relinked_for_pages_in_folders(hooks):
    text = "see [C](CONTRIBUTING.md), [web](https://x.org/a.md), [here](#top) and [D](docs/x.md)"
    assert hooks._relink(text, "benchmarks.md") == text
    assert hooks._relink(text, "guide/datasets.md") == (
        "see [C](../CONTRIBUTING.md), [web](https://x.org/a.md), [here](#top) and [D](../docs/x.md)"
    )


def test_recipes_list_names_every_recipe_and_its_keys(hooks):
    from cnnkit.training.recipes import RECIPES

    text = hooks.recipes_list()
    for recipe in RECIPES.values():
        assert f"### {recipe.name}\n" in text
        for key in recipe.overrides:
            assert f"\n{key}: " in text
    assert "optim.lr: 0.75" in text  # cifar-fast's peak rate


def test_mkdocs_nav_lists_every_generated_page(hooks):
    nav = (ROOT / "mkdocs.yml").read_text()
    for path in [*hooks.GUIDE, "reference/cli.md", "reference/config.md", "benchmarks.md", *hooks.REPO_PAGES]:
        assert f": {path}\n" in nav, path
        assert not (ROOT / "docs" / path).exists(), f"{path} is generated: do not commit it"
