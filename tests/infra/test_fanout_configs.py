"""The fan-out's deployment on Google Cloud and Azure, read without their providers (python-hcl2
for the Terraform, PyYAML for the workflow): the Workflows definition (infra/gcp/workflow.yaml)
calls the functions Terraform defines, in the order plan -> parallel parts -> merge, with the
bodies gcp_function/main.py reads, OIDC, and retries with backoff; the identities may do what
the steps need and no more; the settings are the names the adapters read."""

from __future__ import annotations

import ast
import re

import pytest

from tests.infra import terraform_support as tf

WORKFLOW_YAML = tf.INFRA / "gcp" / "workflow.yaml"
MAIN_PY = tf.REPO / "gcp_function" / "main.py"
FUNCTION_APP = tf.REPO / "azure_function" / "function_app.py"




@pytest.fixture(scope="module")
def workflow(gcp) -> dict:
    """workflow.yaml as Terraform deploys it (its one placeholder replaced), parsed."""
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (pip install -e '.[test]')")
    source = gcp.resource("google_workflows_workflow", "fanout")["source_contents"]
    assert source == ('${replace(file("${path.module}/workflow.yaml"), "__CONCURRENCY_LIMIT__", '
                      'tostring(var.batch_fanout_concurrency))}')
    text = WORKFLOW_YAML.read_text()
    assert text.count("__CONCURRENCY_LIMIT__") == 2  # the comment that explains it, and the one use
    return yaml.safe_load(text.replace("__CONCURRENCY_LIMIT__", "10"))


def steps_of(workflow: dict) -> dict[str, dict]:
    return {name: body for step in workflow["main"]["steps"] for name, body in step.items()}


def step_functions(gcp) -> dict[str, str]:
    """local.fanout_steps: step -> entry point."""
    found = re.findall(r'(\w+) = "(\w+)"', gcp.locals["fanout_steps"])
    return dict(found)


def test_the_workflow_plans_then_runs_every_part_in_parallel_then_merges(workflow, gcp):
    assert workflow["main"]["params"] == ["request"]
    steps = steps_of(workflow)
    assert list(steps) == ["plan", "skip_when_nothing_to_do", "parts", "merge", "done"]

    plan = steps["plan"]["try"]
    assert plan["call"] == "http.post" and plan["args"]["body"] == "${request}" and plan["result"] == "planned"
    assert steps["skip_when_nothing_to_do"]["switch"] == [
        {"condition": "${planned.body.skipped != null}", "return": "${planned.body}"}]

    loop = steps["parts"]["parallel"]
    assert loop["concurrency_limit"] == 10  # var.batch_fanout_concurrency, replaced by Terraform
    assert (loop["for"]["value"], loop["for"]["range"]) == ("index", "${[0, planned.body.parts - 1]}")
    ((name, part),) = loop["for"]["steps"][0].items()
    assert name == "part" and part["try"]["call"] == "http.post"
    assert part["try"]["args"]["body"] == {"plan": "${planned.body.plan}", "index": "${index}"}

    merge = steps["merge"]["try"]
    assert merge["args"]["body"] == {"plan": "${planned.body.plan}"} and merge["result"] == "merged"
    assert steps["done"] == {"return": "${merged.body}"}

    # the bodies are what main.py's steps read and answer
    source = MAIN_PY.read_text()
    for field in ('_field(body, "input", str)', '_field(body, "index", int)', '_field(body, "plan", str)',
                  '"plan": str(where), "parts": len(made["parts"])', '"skipped": None'):
        assert field in source, field

    variable = gcp.variables["batch_fanout_concurrency"]
    assert variable["type"] == "number" and "<= 20" in variable["validation"][0]["condition"]


def test_each_call_is_an_oidc_post_to_a_function_terraform_defines(workflow, gcp):
    steps = steps_of(workflow)
    calls = {"plan": steps["plan"]["try"], "merge": steps["merge"]["try"],
             "part": steps["parts"]["parallel"]["for"]["steps"][0]["part"]["try"]}
    environment = gcp.resource("google_workflows_workflow", "fanout")["user_env_vars"]
    entry_points = step_functions(gcp)
    defined = {node.name for node in ast.walk(ast.parse(MAIN_PY.read_text())) if isinstance(node, ast.FunctionDef)}
    assert set(entry_points) == set(calls)
    for step, call in calls.items():
        variable = re.fullmatch(r'\$\{sys\.get_env\("(\w+)"\)\}', call["args"]["url"]).group(1)
        assert environment[variable] == f'${{google_cloudfunctions2_function.fanout["{step}"].url}}'
        assert entry_points[step] == f"fanout_{step}" and f"fanout_{step}" in defined
        assert call["args"]["auth"] == {"type": "OIDC"}
        # no longer than the function may run, and the longest Workflows waits for one call
        function = gcp.resource("google_cloudfunctions2_function", "fanout")
        assert call["args"]["timeout"] == tf.block(function, "service_config")["timeout_seconds"] == 1800
    assert tf.block(gcp.resource("google_cloudfunctions2_function", "fanout"), "build_config")["entry_point"] == \
        "${each.value}"


def test_every_call_retries_what_a_retry_may_cure_with_backoff(workflow):
    steps = steps_of(workflow)
    retries = {"plan": steps["plan"]["retry"], "merge": steps["merge"]["retry"],
               "part": steps["parts"]["parallel"]["for"]["steps"][0]["part"]["retry"]}
    for step, retry in retries.items():
        assert retry["predicate"] == "${http.default_retry_predicate}", step  # 429, 502, 503, 504, connection
        assert retry["backoff"]["multiplier"] >= 2 and retry["backoff"]["max_delay"] > retry["backoff"]["initial_delay"]
    assert retries["part"]["max_retries"] == 5  # a part alone, the others keep theirs
    # what the steps answer a retry may cure: 503 (StorageError, ModelUnavailable); 4xx otherwise
    assert "exc.status if 400 <= exc.status < 500 else 503" in MAIN_PY.read_text()


def test_the_identities_may_run_the_steps_and_start_the_workflow_and_no_more(gcp):
    invoke = gcp.resource("google_cloud_run_v2_service_iam_member", "workflow_invokes_steps")
    assert invoke["for_each"] == "${local.fanout_steps}" and invoke["role"] == "roles/run.invoker"
    assert invoke["member"] == "${google_service_account.workflow[0].member}"
    assert invoke["name"] == "${google_cloudfunctions2_function.fanout[each.key].name}"
    workflow = gcp.resource("google_workflows_workflow", "fanout")
    assert workflow["service_account"] == "${google_service_account.workflow[0].id}"
    starts = gcp.resource("google_project_iam_member", "batch_starts_fanout")
    assert (starts["role"], starts["member"]) == ("roles/workflows.invoker", "${google_service_account.functions.member}")
    assert "google_workflows_workflow.fanout[0].id" in tf.block(starts, "condition")["expression"]
    batch = gcp.resource("google_cloudfunctions2_function", "batch")
    assert "BATCH_FANOUT_WORKFLOW = google_workflows_workflow.fanout[0].id" in \
        tf.block(batch, "service_config")["environment_variables"]
    assert '"BATCH_FANOUT_WORKFLOW"' in MAIN_PY.read_text()
    assert "BATCH_FANOUT_PART_BYTES = tostring(var.batch_fanout_part_bytes)" in gcp.locals["batch_environment"]
    assert "workflowexecutions.googleapis.com" in gcp.locals["services"]


def test_parts_a_run_left_behind_are_removed_after_a_week(gcp, azure):
    rules = gcp.resource("google_storage_bucket", "outputs")["lifecycle_rule"]
    assert {"condition": [{"age": 7, "matches_prefix": ["${var.output_prefix}_parts/"]}],
            "action": [{"type": "Delete"}]} in rules
    (rule,) = azure.resource("azurerm_storage_management_policy", "parts")["rule"]
    assert tf.block(rule, "filters")["prefix_match"] == ["${var.output_container}/${var.output_prefix}_parts/"]


def test_azure_durable_fanout_is_opt_in_with_a_task_hub_of_its_own(azure):
    settings = azure.locals["settings"]
    assert settings["BATCH_FANOUT_DURABLE"] == '${var.batch_fanout_durable ? "true" : ""}'
    assert '"BATCH_FANOUT_DURABLE"' in FUNCTION_APP.read_text()
    assert azure.variables["batch_fanout_durable"]["default"] is False
    assert settings["AzureFunctionsJobHost__extensions__durableTask__hubName"] == \
        '${var.batch_fanout_durable ? local.task_hub : ""}'
    assert re.fullmatch(r"fanout\$\{local\.compact_name\}\$\{local\.suffix\}", azure.locals["task_hub"])
    roles = azure.resource("azurerm_role_assignment", "task_hub")
    assert "Storage Queue Data Contributor" in roles["for_each"] and "Storage Table Data Contributor" in roles["for_each"]
    assert roles["scope"] == "${azurerm_storage_account.host.id}"
