"""Outputs on the bundled sample are byte-identical to those of the code before the tiled-job skeleton.

The reference digests (tests/fixtures/sample_reference.json) were produced by running tests/sample_reference.py
against the code of commit d2ad98d (before issue 21 moved the mapping and series jobs onto one skeleton);
see that script's docstring to regenerate them. Every output array, its georeferencing, the polygons and
the statistics table are compared.
"""

from __future__ import annotations

import json

import pytest
from sample_reference import REFERENCE, sample_digests


@pytest.fixture(scope="module")
def digests(tmp_path_factory):
    return sample_digests(tmp_path_factory.mktemp("sample"))


def test_every_case_of_the_reference_is_run(digests):
    assert set(digests) == set(json.loads(REFERENCE.read_text()))


@pytest.mark.parametrize("case", sorted(json.loads(REFERENCE.read_text())))
def test_outputs_match_the_reference(digests, case):
    assert digests[case] == json.loads(REFERENCE.read_text())[case]
