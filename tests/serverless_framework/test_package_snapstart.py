"""`sls package` with `--param=snapStart=true --param=warmup=true --param=architecture=arm64`:
SnapStart on a published version of predict behind the alias the HTTP API invokes, the model
preloaded into the snapshot, no warmer (SnapStart turns the warm-up off for predict), both
functions on arm64 with aarch64 wheels. cfn-lint and checkov run on this template too
(test_template.py)."""

from __future__ import annotations

import json
import struct
import zipfile

EM_AARCH64 = 183  # ELF e_machine


def test_predict_gets_snapstart_on_a_published_version_behind_its_alias(packaged_snapstart):
    resources = packaged_snapstart.template()["Resources"]
    predict = resources["PredictLambdaFunction"]["Properties"]
    assert predict["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert "SnapStart" not in resources["BatchLambdaFunction"]["Properties"]
    versions = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Version"
                and r["Properties"]["FunctionName"] == {"Ref": "PredictLambdaFunction"}]
    assert len(versions) == 1
    (alias,) = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Alias"]
    assert alias["Properties"]["FunctionName"] == {"Ref": "PredictLambdaFunction"}
    assert alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][1] == "Version"
    assert "ProvisionedConcurrencyConfig" not in alias["Properties"]
    name = alias["Properties"]["Name"]
    qualified = {"Fn::Join": [":", [{"Fn::GetAtt": ["PredictLambdaFunction", "Arn"]}, name]]}
    (integration,) = packaged_snapstart.resources("AWS::ApiGatewayV2::Integration").values()
    assert integration["Properties"]["IntegrationUri"] == qualified  # the HTTP API invokes the alias
    (permission,) = [r for r in packaged_snapstart.resources("AWS::Lambda::Permission").values()
                     if r["Properties"]["Principal"] == "apigateway.amazonaws.com"]
    assert permission["Properties"]["FunctionName"] == qualified


def test_the_snapshot_holds_the_model_and_no_warmer_pings_predict(packaged_snapstart):
    resources = packaged_snapstart.template()["Resources"]
    predict = resources["PredictLambdaFunction"]["Properties"]["Environment"]["Variables"]
    batch = resources["BatchLambdaFunction"]["Properties"]["Environment"]["Variables"]
    assert (predict["PRELOAD_MODEL"], batch["PRELOAD_MODEL"]) == ("true", "false")
    assert not [name for name in resources if name.startswith("WarmUp")]  # warmup=true was asked


def test_both_functions_run_on_arm64_with_aarch64_wheels(packaged_snapstart):
    resources = packaged_snapstart.template()["Resources"]
    for function in ("PredictLambdaFunction", "BatchLambdaFunction"):
        assert resources[function]["Properties"]["Architectures"] == ["arm64"]
    machines = set()
    with zipfile.ZipFile(packaged_snapstart.zip_path) as archive:
        for info in archive.infolist():
            if info.filename.endswith(".so") or ".so." in info.filename:
                with archive.open(info) as file:
                    header = file.read(20)
                if header[:4] == b"\x7fELF":
                    machines.add(struct.unpack("<H", header[18:20])[0])
    assert machines == {EM_AARCH64}


def test_the_default_package_has_no_snapstart_and_invokes_the_function_itself(packaged):
    resources = packaged.template()["Resources"]
    assert "SnapStart" not in resources["PredictLambdaFunction"]["Properties"]
    assert not [r for r in resources.values() if r["Type"] == "AWS::Lambda::Alias"]
    (integration,) = packaged.resources("AWS::ApiGatewayV2::Integration").values()
    assert json.dumps(integration["Properties"]["IntegrationUri"]) == json.dumps(
        {"Fn::GetAtt": ["PredictLambdaFunction", "Arn"]})
