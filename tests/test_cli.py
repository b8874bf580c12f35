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


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: comms" in capsys.readouterr().out
