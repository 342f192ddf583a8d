"""template.yaml as moto can create it, and creating it there.

The dev stack must exercise the real template, not a copy of it, so the template is translated
with aws-sam-translator (as ``sam deploy`` would) after a few in-memory changes that only moto
needs (verified in the samprobe findings):

- ``CodeUri``/``ContentUri`` must be S3 URIs: each folder is zipped and uploaded to a bucket in
  moto (a missing folder gets a placeholder zip; the code in moto never runs anyway).
- SQS event sources are created disabled: an enabled mapping makes moto take the messages and try
  to run the function in Docker. The dev stack's own pollers feed the functions instead.
- Schedule events are dropped: moto never fires schedules, and a schedule rule with a Lambda
  target makes every PutEvents on the default bus fail with HTTP 500. The dev stack's scheduler
  calls the function instead.

moto's CloudFormation skips resource types it does not implement. Of those, the stack needs one
to exist: the EventBridge Scheduler group (``AWS::Scheduler::ScheduleGroup``) that flow schedules
are kept in; ``create_skipped`` creates it through the Scheduler API, by the name the stack's
``ScheduleGroupName`` output gives.
"""

from __future__ import annotations

import copy
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
ARTIFACT_BUCKET = "flowrelay-dev-artifacts"
_CODE_KEYS = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


class StubManagedPolicyLoader:
    """aws-sam-translator asks this only for managed policy names it does not know; the dev
    stack never calls IAM for them (moto's list of AWS policies is empty anyway)."""

    def load(self) -> dict[str, str]:
        return {}


def zip_folder(path: Path) -> bytes:
    """The folder as a zip (what ``sam package`` uploads); a placeholder when it is missing."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if not path.is_dir():
            archive.writestr("README.txt", "placeholder: the dev stack runs code locally\n")
            return buffer.getvalue()
        for directory, folders, files in os.walk(path):
            folders[:] = [name for name in folders if name != "__pycache__"]
            for name in sorted(files):
                full = Path(directory, name)
                archive.write(full, full.relative_to(path).as_posix())
    return buffer.getvalue()


def moto_ready(sam: dict[str, Any], code_uris: dict[str, str]) -> dict[str, Any]:
    """A copy of the SAM template with the moto-only changes of the module docstring applied.

    ``code_uris`` maps a logical id to the ``s3://`` URI of its uploaded code.
    """
    sam = copy.deepcopy(sam)
    for logical_id, resource in sam["Resources"].items():
        key = _CODE_KEYS.get(resource.get("Type", ""))
        if key is None:
            continue
        properties = resource.setdefault("Properties", {})
        if logical_id in code_uris:
            properties[key] = code_uris[logical_id]
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        events = properties.get("Events", {})
        for name, event in list(events.items()):
            if event.get("Type") == "SQS":
                event.setdefault("Properties", {})["Enabled"] = False
            elif event.get("Type") == "Schedule":
                del events[name]
    return sam


def translate(sam: dict[str, Any], parameters: dict[str, str] | None = None) -> dict[str, Any]:
    """The SAM template as plain CloudFormation (offline; needs a region in the environment)."""
    from samtranslator.translator.transform import transform

    translated: dict[str, Any] = transform(sam, parameters or {}, StubManagedPolicyLoader())
    return translated


def upload_code(
    sam: dict[str, Any], root: Path, s3: Any, bucket: str = ARTIFACT_BUCKET
) -> dict[str, str]:
    """Zip every local CodeUri/ContentUri folder into ``bucket``; logical id -> S3 URI."""
    s3.create_bucket(Bucket=bucket)
    uris: dict[str, str] = {}
    for logical_id, resource in sam["Resources"].items():
        key = _CODE_KEYS.get(resource.get("Type", ""))
        value = resource.get("Properties", {}).get(key) if key else None
        if not isinstance(value, str) or value.startswith("s3://"):
            continue
        s3.put_object(Bucket=bucket, Key=f"{logical_id}.zip", Body=zip_folder(root / value))
        uris[logical_id] = f"s3://{bucket}/{logical_id}.zip"
    return uris


def create_stack(
    template: Path,
    stack_name: str,
    *,
    s3: Any,
    cloudformation: Any,
    parameters: dict[str, str] | None = None,
    bucket: str = ARTIFACT_BUCKET,
) -> dict[str, str]:
    """Create ``template`` (a SAM template file) as stack ``stack_name`` in moto; its Outputs.

    moto builds the resources inside the CreateStack call, so the stack is complete (or the call
    failed) when this returns.
    """
    from samtranslator.yaml_helper import yaml_parse

    sam = yaml_parse(template.read_text())
    uris = upload_code(sam, template.parent, s3, bucket)
    body = translate(moto_ready(sam, uris), parameters)
    cloudformation.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(body),
        Parameters=[
            {"ParameterKey": key, "ParameterValue": value}
            for key, value in (parameters or {}).items()
        ],
        Capabilities=CAPABILITIES,
    )
    (described,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    if described["StackStatus"] != "CREATE_COMPLETE":
        raise RuntimeError(
            f"stack {stack_name} is {described['StackStatus']}: "
            f"{described.get('StackStatusReason')}"
        )
    return {output["OutputKey"]: output["OutputValue"] for output in described.get("Outputs", [])}


def create_skipped(outputs: dict[str, str], scheduler: Any) -> None:
    """Create what moto's CloudFormation skipped and the stack needs: the schedule group."""
    group = outputs.get("ScheduleGroupName")
    if not group:
        return
    try:
        scheduler.get_schedule_group(Name=group)
    except scheduler.exceptions.ResourceNotFoundException:
        scheduler.create_schedule_group(Name=group)


def stack_resources(cloudformation: Any, stack_name: str) -> dict[str, dict[str, Any]]:
    """The stack's resources by logical id. moto lists the resource types it skipped
    (QueuePolicy, Alarm) with no logical id; those are left out."""
    resources: dict[str, dict[str, Any]] = {}
    paginator = cloudformation.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack_name):
        for summary in page.get("StackResourceSummaries", []):
            logical_id = summary.get("LogicalResourceId")
            if logical_id:
                resources[logical_id] = summary
    return resources
