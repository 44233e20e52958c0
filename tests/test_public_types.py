"""A user's type checker sees the public API's types (the package ships py.typed): mypy, run
on a small script as a user would, reveals `Reply` and `Job`, not `Any`, and refuses a turn's
option that does not exist (and a Thread's `thread=`: the thread is its own)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

USER_SCRIPT = textwrap.dedent(
    """
    from jupyter_interactions import InteractionFailed, RequestError, Session, TurnOptions

    session = Session()
    options: TurnOptions = {"model": "local", "thread": "t", "max_output_tokens": 50}
    reveal_type(session.ask("x"))
    reveal_type(session.ask("x", stream=False, **options))
    reveal_type(session.start("x"))
    reveal_type(session.job("some-id"))
    reveal_type(session.job("some-id").result())
    reveal_type(session.thread("t").ask("x"))
    reveal_type(session.thread("t").ask("x", stream=False, show=True, new=True))
    reveal_type(session.thread("t").start("x", show=True, model="local"))
    reveal_type(session.ask("x").text)
    reveal_type(session.ask("x").model)
    reveal_type(session.start("x").status)
    reveal_type(RequestError("no").field)
    reveal_type(InteractionFailed("no").interaction_id)
    """
)

# A misspelt option: the keywords are typed (TurnOptions), not a catch-all; a Thread's take
# every option but `thread`.
TYPO_SCRIPT = textwrap.dedent(
    """
    from jupyter_interactions import Session

    Session().ask("x", modle="local")
    Session().start("x", thread="t", sytem="be brief")
    Session().thread("t").ask("x", thread="u")
    Session().thread("t").start("x", modle="local")
    """
)

# What each reveal_type names (mypy writes `str | None` or `Union[builtins.str, None]`, by version).
EXPECTED = [
    ("jupyter_interactions.reply.Reply",),
    ("jupyter_interactions.reply.Reply",),
    ("jupyter_interactions.jobs.Job",),
    ("jupyter_interactions.jobs.Job",),
    ("jupyter_interactions.reply.Reply",),
    ("jupyter_interactions.reply.Reply",),
    ("jupyter_interactions.reply.Reply",),
    ("jupyter_interactions.jobs.Job",),
    ("str",),  # a Reply's text: never None (checked below)
    ("str", "None"),
    ("str", "None"),
    ("str", "None"),
    ("str", "None"),
]


def test_a_users_type_checker_sees_reply_and_job(tmp_path):
    script, typo = tmp_path / "user.py", tmp_path / "typo.py"
    script.write_text(USER_SCRIPT)
    typo.write_text(TYPO_SCRIPT)
    (tmp_path / "mypy.ini").write_text("[mypy]\n")  # the user's own settings: none
    result = subprocess.run(
        [
            sys.executable, "-m", "mypy", "--strict", "--no-incremental",
            "--config-file", str(tmp_path / "mypy.ini"),
            "--cache-dir", str(tmp_path / "cache"), str(script), str(typo),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    revealed = [line.split("Revealed type is ", 1)[1] for line in result.stdout.splitlines()
                if "Revealed type is " in line]  # fmt: skip
    assert len(revealed) == len(EXPECTED), result.stdout + result.stderr
    for seen, names in zip(revealed, EXPECTED, strict=True):
        assert all(name in seen for name in names) and "Any" not in seen, result.stdout
    assert "None" not in revealed[EXPECTED.index(("str",))], result.stdout
    # Revealing is all the user's script does: under --strict, nothing it calls is untyped.
    # The only errors are the typo script's: three misspelt options and a Thread's `thread`.
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 4, result.stdout + result.stderr
    assert errors[0].startswith("typo.py:4:") and '"modle"' in errors[0], result.stdout
    assert errors[1].startswith("typo.py:5:") and '"sytem"' in errors[1], result.stdout
    assert errors[2].startswith("typo.py:6:") and '"thread"' in errors[2], result.stdout
    assert errors[3].startswith("typo.py:7:") and '"modle"' in errors[3], result.stdout
