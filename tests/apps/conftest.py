"""The applications' tests share the hosts' fixtures: two projects and one person per role."""

from tests.hosts.conftest import other_project, people, project  # noqa: F401
