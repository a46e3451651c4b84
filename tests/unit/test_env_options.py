"""An environment variable supplies an option only when the command line does not give it: every option."""

import argparse
from functools import cache
from pathlib import Path

import pytest

from ledger.entrypoints.cli.main import UsageError, apply_env_defaults, build_parser, env_name, option_actions


@cache
def _loaded():
    """Every command's parser, for reading their options (never parsed with)."""
    return build_parser()


def _leaf(path):
    parser = _loaded()
    for name in path.split():
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    return parser


def _value(action, which):
    """Two distinct valid command-line values of an option (which = 0 for the variable, 1 for the option)."""
    if action.choices:
        return str(list(action.choices)[which])
    if action.type is int or getattr(action.type, "__name__", "") == "_positive_int":
        return str(7 + which)
    if action.type is float:
        return str(1.5 + which)
    if action.type is Path:
        return f"file-{which}.yaml"
    return f"value-{which}"


def _converted(action, text):
    value = action.type(text) if callable(action.type) else text
    return [value] if isinstance(action, argparse._AppendAction) else value


def _base(path, leave_out):
    """The command with its required arguments filled in, leaving out the option under test."""
    if not path:
        return ["contract", "list"]
    parser, argv = _leaf(path), path.split()
    for action in parser._actions:
        if action is leave_out or action.dest == leave_out.dest:
            continue
        if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
            argv.append("1" if action.type is int else "x")
        elif action.required:
            argv += [action.option_strings[0], _value(action, 0)]
    for group in parser._mutually_exclusive_groups:
        if group.required and not any(a.dest == leave_out.dest for a in group._group_actions):
            argv.append(group._group_actions[0].option_strings[0])
    return argv


OPTIONS = [(path, action) for path, action in option_actions(_loaded())]


def _parse(argv, environ):
    """As `obc-ledger` parses: a fresh lazy parser, the variables applied, the command loaded when reached."""
    parser = build_parser(lazy=True)
    apply_env_defaults(parser, environ)
    return parser.parse_args(argv)


@pytest.mark.parametrize(
    "path, action", OPTIONS, ids=[f"{p or 'obc-ledger'} {a.option_strings[0]}" for p, a in OPTIONS]
)
def test_the_command_line_beats_the_environment_and_the_environment_beats_the_default(path, action):
    name, option = env_name(action), action.option_strings[0]
    base = _base(path, action)
    if (
        action.nargs == 0
    ):  # a flag: the variable may turn it on; the command line turns it on whatever the variable
        if any(
            group.required and action.dest in {a.dest for a in group._group_actions}
            for group in _leaf(path)._mutually_exclusive_groups
        ):
            # --upheld/--rejected: a verdict must be given on the command line (argparse counts only those)
            assert getattr(_parse([*base, option], {name: "0"}), action.dest) is True
            return
        assert getattr(_parse(base, {name: "1"}), action.dest) is True
        assert getattr(_parse(base, {name: "0"}), action.dest) is False
        assert getattr(_parse([*base, option], {name: "0"}), action.dest) is True
        return
    env, given = _value(action, 0), _value(action, 1)
    assert getattr(_parse(base, {name: env}), action.dest) == _converted(action, env)
    after = [*base, option, given]
    assert getattr(_parse(after, {name: env}), action.dest) == _converted(action, given)
    if not path:  # a global option, given before the command
        assert getattr(_parse([option, given, *base], {name: env}), action.dest) == _converted(action, given)


def test_a_variable_that_is_not_a_valid_value_is_a_usage_error_only_when_it_is_used():
    base = ["consume", "--bootstrap", "h:1"]
    with pytest.raises(UsageError, match="OBC_LEDGER_BATCH='many'"):
        _parse(base, {"OBC_LEDGER_BATCH": "many"})
    assert _parse([*base, "--batch", "5"], {"OBC_LEDGER_BATCH": "many"}).batch == 5
    with pytest.raises(UsageError, match="--create-topics takes 1/true"):
        _parse(base, {"OBC_LEDGER_CREATE_TOPICS": "ture"})
