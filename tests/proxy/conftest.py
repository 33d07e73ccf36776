"""Fixtures of the reverse-proxy tests: certificates made once per run."""

from __future__ import annotations

import pytest
from support.certs import TestCertificates, make_certificates
from support.nginx import find_nginx


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> TestCertificates:
    return make_certificates(tmp_path_factory.mktemp("proxy-certs"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without nginx these tests cannot run: say how to get it (tests/run installs it)."""
    if find_nginx() is None:
        skip = pytest.mark.skip(reason="nginx is not installed: run tests/proxy/setup.sh")
        for item in items:
            if "tests/proxy/" in str(item.fspath):
                item.add_marker(skip)
