"""Fixtures of the deployment tests: certificates made once per run."""

from __future__ import annotations

import pytest

from support.certs import TestCertificates, make_certificates


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> TestCertificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))
