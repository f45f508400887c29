"""The README's code runs as written."""

from __future__ import annotations

import asyncio
import re
import textwrap
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2, "the README lost its examples"
    for block in blocks:
        source = "async def example():\n" + textwrap.indent(block, "    ")
        namespace: dict[str, object] = {}
        exec(compile(source, str(README), "exec"), namespace)
        asyncio.run(namespace["example"]())  # type: ignore[operator]
    assert Path("state.db").is_file()  # the examples' store, in the test's cwd


def test_readme_lists_every_cli_command() -> None:
    import argparse

    from stateport.cli import build_parser

    text = README.read_text()
    section = text[text.index("## Command line") :]

    def commands(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
        found: list[str] = []
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found.append(f"{prefix}{name}")
                    found.extend(commands(sub, f"{prefix}{name} "))
        return found

    for command in commands(build_parser(), ""):
        leaf = command.split()[-1]
        assert leaf in section, f"README does not mention `stateport {command}`"


def test_work_records_and_methods_say_what_they_are_and_raise() -> None:
    import inspect

    import stateport.domains.work as work

    errors = re.compile(r"NotFound|Conflict|ValidationError|InvalidTransition|IntegrityError")
    for name in work.__all__:
        value = getattr(work, name)
        if inspect.isclass(value):
            assert inspect.getdoc(value), f"{name} has no docstring"
    for name, method in inspect.getmembers(work.WorkStore, inspect.isfunction):
        if name.startswith("_"):
            continue
        doc = inspect.getdoc(method) or ""
        assert doc, f"WorkStore.{name} has no docstring"
        takes_input = len(inspect.signature(method).parameters) > 1
        assert not takes_input or errors.search(doc), f"WorkStore.{name}: which errors?"
