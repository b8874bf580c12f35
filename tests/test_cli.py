import pytest

from comms.cli import build_parser, main


def test_abbreviated_option_is_refused(db_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["compose", "--client", "1", "--channel", "sms", "--body", "hi"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --body" in capsys.readouterr().err


def test_every_command_is_registered():
    names = set(build_parser()._subparsers._group_actions[0].choices)
    assert {"init", "import", "clients", "templates", "generate", "queue", "send"} <= names
    assert {"history", "compose", "send-draft", "log"} <= names


def test_each_command_loads_only_the_module_that_registers_it():
    from comms.cli import COMMANDS

    everything = set(build_parser()._subparsers._group_actions[0].choices)
    assert everything == {c for names in COMMANDS.values() for c in names}
    for names in COMMANDS.values():
        for name in names:
            only = set(build_parser(name)._subparsers._group_actions[0].choices)
            assert only == set(names), name


def test_send_starts_without_pandas_or_jinja():
    import subprocess
    import sys

    code = (
        "import sys; from comms.cli import build_parser; build_parser('send');"
        " print(sorted(m for m in ('pandas', 'jinja2', 'comms.clients') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: comms" in capsys.readouterr().out


def test_the_clis_copies_of_core_choices_match_the_core():
    """The CLI names these without loading the modules (a quicker start for every command)."""
    from comms.cli import clients, templates
    from comms.clients.importing import CONSENT_CHOICES
    from comms.templates import FORMATS

    assert clients.CONSENT_CHOICES == CONSENT_CHOICES
    assert templates.FORMATS == FORMATS
