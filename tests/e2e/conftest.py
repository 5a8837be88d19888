"""Every end-to-end test runs twice: on plain repositories and on encrypted ones (issue #15).

One mechanism, in two parts:

* ``pytest_generate_tests`` parametrises the autouse fixture ``repo_mode`` of
  every test here over ``plain`` and ``encrypted`` (ids ``test_x[plain]``,
  ``test_x[encrypted]``), at module scope, so each module runs its plain tests,
  then its encrypted ones. A test or module marked
  ``@pytest.mark.plain_only("reason")`` gets ``plain`` only: the reason says why
  it cannot apply to an encrypted repository.
* ``repo_mode`` switches ``tests.conftest.repository_mode`` for its tests: in
  the encrypted mode every zerofs subprocess started through ``run_zerofs``,
  ``zerofs``, ``cli_repo``, ``zerofs_command``/``zerofs_argv`` and ``cli_env``
  (the mount helpers use them) reads the password from a file
  ($ZEROFS_PASSWORD_FILE), every ``init`` gets ``--encrypt``, and a test that
  opens a repository in-process passes ``**repo_secrets()``.

A fixture here of a scope wider than a function (a repository built once per
module, a command server) must request ``repo_mode``, directly or through
another fixture, so that pytest makes it again for the other mode;
``pytest_collection_modifyitems`` refuses one that does not.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import pytest

from tests.conftest import MODES, repository_mode


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "repo_mode" not in metafunc.fixturenames:
        return
    plain_only = metafunc.definition.get_closest_marker("plain_only")
    if plain_only is not None and not (plain_only.args and plain_only.args[0]):
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: plain_only needs a reason")
    modes = MODES[:1] if plain_only else MODES
    metafunc.parametrize("repo_mode", modes, indirect=True, scope="module")


@pytest.fixture(scope="module", autouse=True)
def repo_mode(request: pytest.FixtureRequest) -> Iterator[str]:
    """``plain`` or ``encrypted``: the kind of repository every zerofs command of the test makes and opens."""
    mode: str = request.param
    with repository_mode(mode):
        yield mode


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse a shared fixture of the e2e tests that would outlive a change of mode (see the module's docstring)."""
    for item in items:
        definitions: Mapping[str, Sequence[pytest.FixtureDef[object]]] = item._fixtureinfo.name2fixturedefs  # type: ignore[attr-defined]
        for name, fixturedefs in definitions.items():
            fixturedef = fixturedefs[-1]
            is_ours = fixturedef.baseid.startswith("tests/e2e")
            if is_ours and fixturedef.scope != "function" and not _follows_mode(name, definitions):
                raise pytest.UsageError(
                    f"fixture {name!r} ({fixturedef.scope} scope) must request repo_mode: "
                    "it would be shared by the plain and the encrypted tests"
                )


def _follows_mode(name: str, definitions: Mapping[str, Sequence[pytest.FixtureDef[object]]]) -> bool:
    """True if the fixture ``name`` is ``repo_mode`` or requests it, directly or through other fixtures."""
    if name == "repo_mode":
        return True
    fixturedefs = definitions.get(name)
    return bool(fixturedefs) and any(_follows_mode(arg, definitions) for arg in fixturedefs[-1].argnames)
