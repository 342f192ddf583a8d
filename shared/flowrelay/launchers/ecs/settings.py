"""What an ECS target says about where and how its runs start (``Target.settings``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from flowrelay.core.modeling import Model
from flowrelay.core.run_configs.ecs import ecs_cpu, ecs_memory


class EcsSettings(Model):
    """Where and how an ECS target starts tasks; a run's ECSRun fields are merged over these."""

    model_config = ConfigDict(extra="forbid")

    cluster: str = Field(min_length=1)
    subnets: list[str] = Field(default_factory=list)
    security_groups: list[str] = Field(default_factory=list)
    assign_public_ip: bool = False
    launch_type: Literal["FARGATE", "EC2", "EXTERNAL"] | None = "FARGATE"
    capacity_provider_strategy: list[dict[str, Any]] | None = None
    platform_version: str | None = None
    image: str | None = None
    cpu: str = "256"
    memory: str = "512"
    task_role_arn: str | None = None
    execution_role_arn: str | None = None
    log_group: str | None = None
    vpc: str | None = Field(
        default=None,
        description="The VPC of subnets (found from the first subnet when not set); only read "
        "for ephemeral Dask clusters.",
    )
    dask_task_role_arn: str | None = Field(
        default=None,
        description="The role of an ephemeral Dask cluster's scheduler and workers (the flow "
        "run's task role when not set).",
    )

    @field_validator("cpu", mode="before")
    @classmethod
    def _check_cpu(cls, value: Any) -> Any:
        return ecs_cpu(value)  # 256 as ECSRun takes it, not only "256"

    @field_validator("memory", mode="before")
    @classmethod
    def _check_memory(cls, value: Any) -> Any:
        return ecs_memory(value)

    @model_validator(mode="after")
    def _launch_type_or_capacity(self) -> EcsSettings:
        if self.capacity_provider_strategy:
            self.launch_type = None
        return self


def stack_defaults(outputs: Mapping[str, str], ec2: Any) -> dict[str, Any]:
    """The settings an ECS target on a flowrelay stack starts from: the stack's cluster, log
    group and roles (its ``ClusterName``, ``LogGroupName``, ``FlowRunTaskRoleArn``,
    ``FlowRunExecutionRoleArn`` and ``DaskTaskRoleArn`` outputs) and, for the network, the
    account's default VPC: its default subnets (public: so tasks get a public IP, to pull
    their image) and its ``default`` security group. Only what is found is returned.

    >>> stack_defaults({"ClusterName": "flows"}, ec2=None)
    {'cluster': 'flows'}
    """
    defaults: dict[str, Any] = {}
    if outputs.get("ClusterName"):
        defaults["cluster"] = outputs["ClusterName"]
    if outputs.get("LogGroupName"):
        defaults["log_group"] = outputs["LogGroupName"]
    # The stack's roles: the runner reports with its task role (PutEvents on the bus, GetItem
    # on the table), the execution role pulls the image and ships logs; an ephemeral Dask
    # cluster's scheduler and workers get DaskTaskRole.
    for setting, output in (
        ("task_role_arn", "FlowRunTaskRoleArn"),
        ("execution_role_arn", "FlowRunExecutionRoleArn"),
        ("dask_task_role_arn", "DaskTaskRoleArn"),
    ):
        if outputs.get(output):
            defaults[setting] = outputs[output]
    if ec2 is None:
        return defaults
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])
    subnet_ids = sorted(subnet["SubnetId"] for subnet in subnets.get("Subnets", []))
    if subnet_ids:
        vpc = subnets["Subnets"][0]["VpcId"]
        groups = ec2.describe_security_groups(
            Filters=[
                {"Name": "vpc-id", "Values": [vpc]},
                {"Name": "group-name", "Values": ["default"]},
            ]
        ).get("SecurityGroups", [])
        defaults["subnets"] = subnet_ids
        defaults["vpc"] = vpc
        defaults["assign_public_ip"] = True
        if groups:
            defaults["security_groups"] = [groups[0]["GroupId"]]
    return defaults
