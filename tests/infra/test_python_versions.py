"""One list of the Python versions each cloud deploys, and every place that names one compared
against it: the root README, the adapters' READMEs, infra/README.md, serverless.yml and the
`runtime`/`python_version` variables of infra/*/variables.tf. A version added in one place and
forgotten in another fails here, naming the file and the line.

tests/packaging/test_requirements_resolve.py resolves the Azure and GCP requirements files for
each version of this list.
"""

from __future__ import annotations

import re

import pytest

from tests.infra import terraform_support as tf
from tests.support import REPO

# The one list. Defaults: the newest version for which every pinned wheel exists (Azure: Flex
# Consumption's newest; GCP: python314 on Ubuntu 24.04), except AWS: every pin of
# aws_lambda/requirements*.txt has python3.14 wheels, but infra/aws's provider does not know
# python3.14 (PROVIDER_LAGS) and `serverless-ml package --provider aws` builds one bundle for both
# AWS paths, so serverless.yml, infra/aws and the package command all default to python3.13.
SUPPORTED = {
    "aws": ("3.12", "3.13", "3.14"),
    "azure": ("3.12", "3.13"),
    "gcp": ("3.12", "3.13", "3.14"),
}
DEFAULT = {"aws": "3.13", "azure": "3.13", "gcp": "3.14"}

# Versions the cloud runs that its Terraform provider, at the pin of infra/<cloud>/versions.tf,
# refuses: hashicorp/aws 5.100 (the machine's mirror) knows Lambda runtimes up to python3.13, 6.x
# knows python3.14. serverless.yml deploys these versions; the runtime variable's message says why
# it does not. Moving the pin fails the test below until the version is allowed and taken out here.
PROVIDER_LAGS = {"aws": {"3.14": 'version = "~> 5.100"'}}

# how each cloud writes a version in its own configuration
SPELLING = {
    "aws": lambda version: f"python{version}",  # python3.13
    "azure": lambda version: version,  # 3.13
    "gcp": lambda version: "python" + version.replace(".", ""),  # python313
}
VARIABLE = {"aws": "runtime", "azure": "python_version", "gcp": "runtime"}

# Documents and the cloud each one speaks of; for the root README, a line is attributed to the
# clouds it names. Versions of this machine's own tooling (the Python the tests run on) are not
# deployment versions: lines that speak of them are left out by the words below.
DOCUMENTS = {
    "README.md": None,
    "infra/README.md": None,
    "azure_function/README.md": "azure",
    "gcp_function/README.md": "gcp",
    "aws_lambda/README.md": "aws",
    "serverless.yml": "aws",
    "infra/aws/variables.tf": "aws",
    "infra/azure/variables.tf": "azure",
    "infra/gcp/variables.tf": "gcp",
}
CLOUD_WORDS = {
    "aws": re.compile(r"\b(AWS|Lambda|serverless\.yml|sls)\b"),
    "azure": re.compile(r"\b(Azure|Flex Consumption|Elastic Premium)\b"),
    "gcp": re.compile(r"\b(GCP|Google|Cloud Run|Cloud Functions|gcloud)\b"),
}
NOT_A_DEPLOYMENT = re.compile(r"(?i)fresh machine|measured on this machine|this machine \(|CPython 3\.\d+ a loop|requires-python")
# a line that names an old version to say why it is not used is no claim that it is
EXPLAINS_WHY_NOT = re.compile(r"(?i)Amazon Linux 2(?!0)|retire|not offered|no longer|stuck|newer than|instead of|is gone")
MENTION = re.compile(r"(?<![=.\d])(3\.1\d)(?![.\d])|\bpython(3\d\d)\b")


def mentioned_versions(line: str) -> set[str]:
    found = set()
    for dotted, compact in MENTION.findall(line):
        found.add(dotted or f"{compact[0]}.{compact[1:]}")
    return found


def clouds_of(line: str) -> set[str]:
    return {cloud for cloud, words in CLOUD_WORDS.items() if words.search(line)}


def mentions(cloud: str) -> list[tuple[str, int, str, set[str]]]:
    """(file, line number, line, versions) for every line that names a Python version of ``cloud``:
    in a document of that cloud, or, in the shared ones, a line that names that cloud alone or
    stands under a heading that does."""
    found = []
    for name, only in DOCUMENTS.items():
        section: set[str] = set()
        for number, line in enumerate((REPO / name).read_text().splitlines(), 1):
            if line.startswith("#") and name.endswith(".md"):
                section = clouds_of(line)
            versions = mentioned_versions(line)
            if not versions or NOT_A_DEPLOYMENT.search(line) or EXPLAINS_WHY_NOT.search(line):
                continue
            speaks_of = {only} if only else (clouds_of(line) or section)
            if speaks_of == {cloud}:
                found.append((name, number, line.strip(), versions))
    return found


@pytest.mark.parametrize("cloud", SUPPORTED)
def test_the_runtime_variable_allows_exactly_the_supported_versions(cloud, hcl2_module):
    variable = tf.parse_config(tf.INFRA / cloud).variables[VARIABLE[cloud]]
    (validation,) = variable["validation"]
    allowed = set(validation["condition"].split('"')[1::2])
    lags = PROVIDER_LAGS.get(cloud, {})
    assert allowed == {SPELLING[cloud](v) for v in SUPPORTED[cloud] if v not in lags}, (
        f"infra/{cloud}/variables.tf: {VARIABLE[cloud]} allows {sorted(allowed)}, the list says {SUPPORTED[cloud]}"
        f" less {sorted(lags)} (PROVIDER_LAGS)")
    pins = (tf.INFRA / cloud / "versions.tf").read_text()
    for version, pin in lags.items():
        assert pin in pins, (f"infra/{cloud}/versions.tf no longer has {pin}: if its provider knows "
                             f"{SPELLING[cloud](version)} now, allow it and take it out of PROVIDER_LAGS")
    for version in SUPPORTED[cloud]:
        assert SPELLING[cloud](version) in validation["error_message"], validation["error_message"]
    assert variable["default"] in allowed
    if cloud in DEFAULT:
        assert variable["default"] == SPELLING[cloud](DEFAULT[cloud])


@pytest.mark.parametrize("cloud", SUPPORTED)
def test_every_document_names_only_supported_versions(cloud):
    wrong = [f"{name}:{number}: {sorted(versions - set(SUPPORTED[cloud]))} in {line!r}"
             for name, number, line, versions in mentions(cloud) if versions - set(SUPPORTED[cloud])]
    assert not wrong, f"{cloud} supports {SUPPORTED[cloud]}; these lines name others:\n" + "\n".join(wrong)


@pytest.mark.parametrize("cloud", SUPPORTED)
def test_the_versions_are_named_somewhere_a_user_reads(cloud):
    """The check above can only fail where versions are named: each cloud's README names them."""
    named = set().union(*(versions for name, _, _, versions in mentions(cloud) if name.endswith("README.md")))
    assert set(SUPPORTED[cloud]) <= named, f"{cloud}: the READMEs never name {sorted(set(SUPPORTED[cloud]) - named)}"


def test_serverless_yml_runtime_is_a_supported_version():
    text = (REPO / "serverless.yml").read_text()
    runtimes = set(re.findall(r"^\s*runtime:\s*python(3\.\d+)", text, re.M))
    assert runtimes and runtimes <= set(SUPPORTED["aws"]), runtimes
    # params.runtime is the default; lambda_settings.js allows exactly the list
    (default,) = re.findall(r"^    runtime: python(3\.\d+)$", text, re.M)
    assert default == DEFAULT["aws"]
    settings = (REPO / "serverless_ml" / "bundles" / "lambda_settings.js").read_text()
    (allowed,) = re.findall(r"^const RUNTIMES = \[(.*)\];$", settings, re.M)
    assert re.findall(r"'python(3\.\d+)'", allowed) == list(SUPPORTED["aws"])


def test_the_aws_bundle_is_built_for_the_supported_versions():
    from serverless_ml.bundles.providers import LAMBDA_DEFAULT_PYTHON, LAMBDA_PYTHON_VERSIONS

    assert (tuple(LAMBDA_PYTHON_VERSIONS), LAMBDA_DEFAULT_PYTHON) == (SUPPORTED["aws"], DEFAULT["aws"])


def test_the_mention_pattern_reads_each_spelling():
    assert mentioned_versions("Python 3.13 on Flex") == {"3.13"}
    assert mentioned_versions("--runtime=python314 and python3.12") == {"3.14", "3.12"}
    assert mentioned_versions("orjson==3.9.10") == set()
    assert EXPLAINS_WHY_NOT.search("Lambda's 3.11 runs on Amazon Linux 2, whose glibc")
    assert not EXPLAINS_WHY_NOT.search("Python 3.14 runs on Amazon Linux 2023")
