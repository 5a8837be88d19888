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
  opens a repository in-process passes ``password=repo_password()``.

A fixture of module scope that makes or opens a repository must request
``repo_mode``, so that pytest makes it again for the other mode.
"""

from __future__ import annotations

from collections.abc import Iterator

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
